import { useStudio } from '../store/store.ts';
import { runSelfTest } from './engine-client.ts';
import { adapterName, fmtBytes } from './format.ts';

const SIZE_LIMITS = new Set([
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
]);

/** The adapter the engine's worker got, the limits that bound training, and a kernel self-test. */
export function AdapterPanel() {
  const status = useStudio((s) => s.gpuStatus);
  const adapter = useStudio((s) => s.adapter);
  const selfTest = useStudio((s) => s.selfTest);
  if (status === 'checking') return <section className="panel">Looking for a WebGPU adapter…</section>;
  if (!adapter)
    return <section className="panel warn">No GPU adapter could be opened (see the error above).</section>;
  const has = (f: string) => adapter.features.includes(f);
  return (
    <section className="panel" data-testid="adapter">
      <h2>GPU</h2>
      <p className="adapter-name" data-testid="adapter-name">
        {adapterName(adapter)}
        {adapter.isFallback && <span className="badge">software: slow, fine for trying the demo</span>}
        {status === 'lost' && <span className="badge bad">device lost</span>}
      </p>
      <table className="limits">
        <tbody>
          <tr>
            <th>vendor</th>
            <td>{adapter.vendor || '—'}</td>
          </tr>
          <tr>
            <th>architecture</th>
            <td>{adapter.architecture || '—'}</td>
          </tr>
          {Object.entries(adapter.limits).map(([k, v]) => (
            <tr key={k}>
              <th>{k}</th>
              <td>{SIZE_LIMITS.has(k) ? `${fmtBytes(v)} (${v})` : v}</td>
            </tr>
          ))}
          <tr>
            <th>shader-f16</th>
            <td data-testid="feature-f16">{has('shader-f16') ? 'yes' : 'no'}</td>
          </tr>
          <tr>
            <th>subgroups</th>
            <td data-testid="feature-subgroups">{has('subgroups') ? 'yes' : 'no'}</td>
          </tr>
        </tbody>
      </table>
      <div className="selftest">
        <button type="button" data-testid="selftest" onClick={runSelfTest} disabled={selfTest.running}>
          {selfTest.running ? 'Running…' : 'Run GPU self-test'}
        </button>
        {selfTest.ok !== undefined && (
          <span data-testid="selftest-result" className={selfTest.ok ? 'ok' : 'bad'}>
            {selfTest.ok ? 'PASS' : 'FAIL'}: {selfTest.kernel} vs CPU reference, max |err|{' '}
            {selfTest.maxAbsErr?.toExponential(2)} ({selfTest.ms?.toFixed(1)} ms)
          </span>
        )}
      </div>
    </section>
  );
}
