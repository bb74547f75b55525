/** What to do when the browser has no WebGPU. */
export function NoWebGpu() {
  return (
    <section className="panel warn" data-testid="no-webgpu">
      <h2>WebGPU is not available in this browser</h2>
      <p>RLHF Studio trains on your GPU through WebGPU. To use it:</p>
      <ul>
        <li>Chrome or Edge 113 or newer on Windows, macOS or ChromeOS: WebGPU is on by default.</li>
        <li>
          Chrome on Linux: start it with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>, or turn
          on <code>chrome://flags/#enable-unsafe-webgpu</code>.
        </li>
        <li>Chrome 121+ on Android (recent devices), Safari 26 or newer, Firefox 141+ on Windows.</li>
        <li>
          Make sure hardware acceleration is on in the browser settings; <code>chrome://gpu</code> shows
          whether WebGPU is blocked for your GPU or driver.
        </li>
      </ul>
    </section>
  );
}
