/**
 * A DPO or reward-model run on screen: live charts of its stats by TRL name (x = update) and a few
 * pairs with the policy's and the reference's log-probs (DPO) or the reward model's scores.
 */
import { memo, useMemo } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useMethod, type PrefMetricRow, type PreferenceMethod } from '../store/method.ts';
import { useStudio } from '../store/store.ts';
import { fmtNum } from './format.ts';
import { exportModel } from './engine-client.ts';

interface ChartSpec {
  id: string;
  title: string;
  stats: string[];
}

const COLORS = ['#1f6feb', '#cf222e', '#1a7f37', '#6e40c9'];

const CHARTS: Record<PreferenceMethod, ChartSpec[]> = {
  dpo: [
    { id: 'loss', title: 'loss', stats: ['loss'] },
    {
      id: 'rewards',
      title: 'Implicit rewards',
      stats: ['rewards/chosen', 'rewards/rejected', 'rewards/margins'],
    },
    { id: 'accuracies', title: 'rewards/accuracies', stats: ['rewards/accuracies'] },
    { id: 'logps', title: 'Log-probs of the completions', stats: ['logps/chosen', 'logps/rejected'] },
    { id: 'logits', title: 'Mean logits', stats: ['logits/chosen', 'logits/rejected'] },
  ],
  reward: [
    { id: 'loss', title: 'loss', stats: ['loss'] },
    { id: 'accuracy', title: 'accuracy', stats: ['accuracy'] },
    { id: 'rewards', title: 'Scores', stats: ['rewards/chosen', 'rewards/rejected', 'rewards/margins'] },
  ],
};

const PrefChart = memo(function PrefChart({
  spec,
  metrics,
}: {
  spec: ChartSpec;
  metrics: readonly PrefMetricRow[];
}) {
  const rows = useMemo(
    () =>
      metrics.map((m) => ({ step: m.step, ...Object.fromEntries(spec.stats.map((s) => [s, m.stats[s]])) })),
    [metrics, spec],
  );
  return (
    <figure
      className="chart"
      data-testid={`pref-chart-${spec.id}`}
      data-points={rows.length}
      aria-label={spec.title}
    >
      <figcaption>{spec.title}</figcaption>
      <ResponsiveContainer width="100%" height={170}>
        <LineChart data={rows} margin={{ top: 6, right: 12, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e6e9ef" />
          <XAxis
            dataKey="step"
            type="number"
            domain={['dataMin', 'dataMax']}
            allowDecimals={false}
            fontSize={11}
          />
          <YAxis width={58} fontSize={11} tickFormatter={fmtNum} domain={['auto', 'auto']} />
          <Tooltip
            formatter={(v) => (typeof v === 'number' ? fmtNum(v) : String(v))}
            labelFormatter={(s) => `update ${s}`}
          />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {spec.stats.map((s, i) => (
            <Line
              key={s}
              dataKey={s}
              name={s}
              stroke={COLORS[i]}
              dot={rows.length < 30}
              strokeWidth={1.8}
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </figure>
  );
});

function PairsTable({ method }: { method: PreferenceMethod }) {
  const pairs = useMethod((s) => s.pairs);
  if (!pairs) return null;
  const dpo = method === 'dpo';
  return (
    <section className="panel samples" aria-label="Pairs" data-testid="pref-pairs" data-step={pairs.step}>
      <h2>
        Pairs after update {pairs.step}{' '}
        <span className="hint">
          {dpo ? 'sequence log-probs of the completions: policy (reference)' : 'reward-model scores'}
        </span>
      </h2>
      <table>
        <thead>
          <tr>
            <th>row</th>
            <th>prompt</th>
            <th>chosen</th>
            <th>{dpo ? 'log p' : 'score'}</th>
            <th>rejected</th>
            <th>{dpo ? 'log p' : 'score'}</th>
          </tr>
        </thead>
        <tbody>
          {pairs.rows.map((r) => (
            <tr key={r.row}>
              <td>{r.row}</td>
              <td>{r.prompt}</td>
              <td>{r.chosen}</td>
              <td className="num">
                {fmtNum(r.chosenValue)}
                {r.refChosen !== undefined && <span className="hint"> ({fmtNum(r.refChosen)})</span>}
              </td>
              <td>{r.rejected}</td>
              <td className="num">
                {fmtNum(r.rejectedValue)}
                {r.refRejected !== undefined && <span className="hint"> ({fmtNum(r.refRejected)})</span>}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function PreferencePanel() {
  const method = useMethod((s) => s.running ?? (s.draft.method === 'ppo' ? null : s.draft.method));
  const metrics = useMethod((s) => s.metrics);
  const hasModel = useStudio((s) => s.run.info !== null && s.run.phase !== 'loading');
  const addError = useStudio((s) => s.addError);
  if (!method) return null;
  /** The reward model trained here as the PPO form's reward: its folder as local files. */
  const useAsReward = () => {
    // A LoRA reward model goes in merged: the PPO reward loads a whole GPT2ForSequenceClassification.
    exportModel({ merged: true })
      .then((files) => {
        const studio = useStudio.getState();
        const blobs = new Map(
          [...files].map(([name, bytes]) => [name, new Blob([bytes as Uint8Array<ArrayBuffer>])]),
        );
        studio.setDraft({
          reward: { ...studio.draft.reward, kind: 'files', files: blobs },
          rewardEngine: 'webgpu',
        });
        useMethod.getState().setMethod('ppo');
      })
      .catch((e: unknown) =>
        addError({
          name: 'ExportError',
          message: (e as Error).message,
          during: 'exporting the reward model',
        }),
      );
  };
  const last = metrics.length ? metrics[metrics.length - 1].step : 0;
  return (
    <>
      <p className="hint" data-testid="pref-step-counter" data-step={last}>
        {method === 'dpo' ? 'DPO' : 'Reward model'}: update <strong>{last}</strong>
        {method === 'reward' && (
          <>
            {' '}
            <button
              type="button"
              className="secondary"
              data-testid="use-as-reward"
              disabled={!hasModel}
              onClick={useAsReward}
            >
              Use as the PPO reward
            </button>
          </>
        )}
      </p>
      <section className="charts" aria-label="Training charts">
        {CHARTS[method].map((spec) => (
          <PrefChart key={spec.id} spec={spec} metrics={metrics} />
        ))}
      </section>
      <PairsTable method={method} />
    </>
  );
}
