import { useStudio } from '../store/store.ts';
import { AdapterPanel } from './AdapterPanel.tsx';
import { ErrorList } from './ErrorList.tsx';
import { NoWebGpu } from './NoWebGpu.tsx';

export function App() {
  const status = useStudio((s) => s.gpuStatus);
  return (
    <div className="app">
      <header className="app-header">
        <h1>RLHF Studio</h1>
        <p className="tagline">Fine-tune GPT-2 with PPO from a reward model, on your own GPU, in this tab.</p>
      </header>
      <main>
        <ErrorList />
        {status === 'no-webgpu' ? <NoWebGpu /> : <AdapterPanel />}
      </main>
    </div>
  );
}
