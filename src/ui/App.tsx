import { useStudio } from '../store/store.ts';
import { AdapterPanel } from './AdapterPanel.tsx';
import { Charts } from './Charts.tsx';
import { ComparePanel } from './ComparePanel.tsx';
import { Controls } from './Controls.tsx';
import { Downloads } from './Downloads.tsx';
import { ErrorList } from './ErrorList.tsx';
import { EvaluatePanel } from './EvaluatePanel.tsx';
import { FeedbackPanel } from './FeedbackPanel.tsx';
import { MethodSettings } from './MethodSettings.tsx';
import { NoWebGpu } from './NoWebGpu.tsx';
import { PreferencePanel } from './PreferencePanel.tsx';
import { useMethod } from '../store/method.ts';
import { ResumeBanner } from './ResumeBanner.tsx';
import { RunsPanel } from './RunsPanel.tsx';
import { SamplesTable } from './SamplesTable.tsx';
import { SettingsPanel } from './SettingsPanel.tsx';
import { StatusLine } from './StatusLine.tsx';
import { TrlExportButton } from './TrlExportButton.tsx';

export function App() {
  const status = useStudio((s) => s.gpuStatus);
  const ppo = useMethod((s) => (s.running ?? s.draft.method) === 'ppo');
  return (
    <div className="app">
      <header className="app-header">
        <h1>RLHF Studio</h1>
        <p className="tagline">Fine-tune GPT-2 with PPO from a reward model, on your own GPU, in this tab.</p>
      </header>
      <ErrorList />
      {status === 'no-webgpu' ? (
        <NoWebGpu />
      ) : (
        <>
          <ResumeBanner />
          <div className="studio">
            <aside className="sidebar" aria-label="Settings">
              <MethodSettings />
              <SettingsPanel />
            </aside>
            <main className="workspace">
              <div className="toolbar">
                <Controls />
                <StatusLine />
                <Downloads />
                <TrlExportButton />
              </div>
              {ppo ? (
                <>
                  <Charts />
                  <div className="pair">
                    <SamplesTable />
                    <ComparePanel />
                  </div>
                  <EvaluatePanel />
                  <FeedbackPanel />
                </>
              ) : (
                <>
                  <PreferencePanel />
                  {/* Kept runs evaluated side by side (runs panel) report here whatever the method. */}
                  <EvaluatePanel />
                </>
              )}
              <RunsPanel />
              <section className="diagnostics" aria-label="Diagnostics">
                <AdapterPanel />
              </section>
            </main>
          </div>
        </>
      )}
    </div>
  );
}
