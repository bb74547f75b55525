/**
 * Compute pipelines, compiled once per (WGSL source, entry point, override constants) and cached.
 * Layouts are 'auto': every binding a shader declares must be used by its entry point.
 */
export class PipelineCache {
  private readonly cache = new Map<string, GPUComputePipeline>();
  private readonly modules = new Map<string, GPUShaderModule>();

  constructor(private readonly device: GPUDevice) {}

  get(code: string, entryPoint: string, constants: Record<string, number> = {}): GPUComputePipeline {
    const constKey = Object.keys(constants)
      .sort()
      .map((k) => `${k}=${constants[k]}`)
      .join(',');
    const key = `${entryPoint}|${constKey}|${code}`;
    let pipeline = this.cache.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        label: entryPoint,
        layout: 'auto',
        compute: { module: this.module(code, entryPoint), entryPoint, constants },
      });
      this.cache.set(key, pipeline);
    }
    return pipeline;
  }

  get size(): number {
    return this.cache.size;
  }

  private module(code: string, label: string): GPUShaderModule {
    let mod = this.modules.get(code);
    if (!mod) {
      mod = this.device.createShaderModule({ label, code });
      this.modules.set(code, mod);
    }
    return mod;
  }
}
