/**
 * Live charts of a run, x = PPO step: reward with its std band, KL and its coefficient, the
 * policy and value losses, entropy, clip fractions, policy KL. Target flips are vertical lines.
 * Each chart subscribes to the metrics and marks slices only.
 */
import { memo, useMemo } from 'react';
import {
  Area,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import type { MetricRow, TargetMark } from '../protocol.ts';
import type { ScalarStatName } from '../rl/stats.ts';
import { useStudio } from '../store/store.ts';
import { fmtNum } from './format.ts';

interface Series {
  stat: ScalarStatName;
  label: string;
  color: string;
  /** Plotted against the right-hand axis (a different scale). */
  right?: boolean;
}

interface ChartSpec {
  testId: string;
  title: string;
  series: Series[];
  /** Shade mean ± std of these two stats. */
  band?: { mean: ScalarStatName; std: ScalarStatName };
}

const CHARTS: ChartSpec[] = [
  {
    testId: 'chart-reward',
    title: 'Reward (env/reward_mean ± std)',
    series: [{ stat: 'env/reward_mean', label: 'reward mean', color: '#1f6feb' }],
    band: { mean: 'env/reward_mean', std: 'env/reward_std' },
  },
  {
    testId: 'chart-kl',
    title: 'KL to the reference',
    series: [
      { stat: 'objective/kl', label: 'objective/kl', color: '#b35c00' },
      { stat: 'objective/kl_coef', label: 'kl_coef (right)', color: '#6e40c9', right: true },
    ],
  },
  {
    testId: 'chart-loss',
    title: 'Losses',
    series: [
      { stat: 'ppo/loss/policy', label: 'policy', color: '#cf222e' },
      { stat: 'ppo/loss/value', label: 'value (right)', color: '#1a7f37', right: true },
    ],
  },
  {
    testId: 'chart-entropy',
    title: 'Entropy (objective/entropy)',
    series: [{ stat: 'objective/entropy', label: 'entropy', color: '#0969da' }],
  },
  {
    testId: 'chart-clipfrac',
    title: 'Clip fractions',
    series: [
      { stat: 'ppo/policy/clipfrac', label: 'policy', color: '#bf3989' },
      { stat: 'ppo/val/clipfrac', label: 'value', color: '#57606a' },
    ],
  },
  {
    testId: 'chart-policykl',
    title: 'Policy change per step',
    series: [
      { stat: 'ppo/policy/approxkl', label: 'approxkl', color: '#953800' },
      { stat: 'ppo/policy/policykl', label: 'policykl', color: '#0550ae' },
    ],
  },
];

type Row = Record<string, number | [number, number] | undefined>;

/** One chart's points: step, each series' value, and the band as [low, high]. */
function chartRows(metrics: readonly MetricRow[], spec: ChartSpec): Row[] {
  return metrics.map((m) => {
    const row: Row = { step: m.step };
    for (const s of spec.series) row[s.stat] = m.stats[s.stat];
    if (spec.band) {
      const mean = m.stats[spec.band.mean];
      const std = m.stats[spec.band.std];
      if (mean !== undefined && std !== undefined && Number.isFinite(std))
        row.band = [mean - std, mean + std];
    }
    return row;
  });
}

/** Ticks of a narrow range (kl_coef moves in its fifth digit) need more digits than fmtNum's four. */
const tickFormatter = (v: number) =>
  Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(Number(v.toPrecision(5))) : fmtNum(v);

const StatChart = memo(function StatChart({
  spec,
  metrics,
  marks,
}: {
  spec: ChartSpec;
  metrics: readonly MetricRow[];
  marks: readonly TargetMark[];
}) {
  const rows = useMemo(() => chartRows(metrics, spec), [metrics, spec]);
  const hasRight = spec.series.some((s) => s.right);
  return (
    <figure className="chart" data-testid={spec.testId} data-points={rows.length} aria-label={spec.title}>
      <figcaption>{spec.title}</figcaption>
      <ResponsiveContainer width="100%" height={190}>
        <ComposedChart data={rows} margin={{ top: 6, right: hasRight ? 4 : 12, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e6e9ef" />
          <XAxis
            dataKey="step"
            type="number"
            domain={['dataMin', 'dataMax']}
            allowDecimals={false}
            fontSize={11}
          />
          <YAxis
            yAxisId="left"
            width={58}
            fontSize={11}
            tickFormatter={tickFormatter}
            domain={['auto', 'auto']}
          />
          {hasRight && (
            <YAxis
              yAxisId="right"
              orientation="right"
              width={58}
              fontSize={11}
              tickFormatter={tickFormatter}
              domain={['auto', 'auto']}
            />
          )}
          <Tooltip
            formatter={(v) => (typeof v === 'number' ? fmtNum(v) : String(v))}
            labelFormatter={(s) => `step ${s}`}
          />
          <Legend wrapperStyle={{ fontSize: 11 }} />
          {spec.band && (
            <Area
              yAxisId="left"
              dataKey="band"
              name="± std"
              stroke="none"
              fill="#1f6feb"
              fillOpacity={0.15}
              isAnimationActive={false}
              legendType="none"
            />
          )}
          {spec.series.map((s) => (
            <Line
              key={s.stat}
              yAxisId={s.right ? 'right' : 'left'}
              dataKey={s.stat}
              name={s.label}
              stroke={s.color}
              dot={rows.length < 30}
              strokeWidth={1.8}
              isAnimationActive={false}
            />
          ))}
          {marks.map((m) => (
            <ReferenceLine
              key={`${m.fromStep}-${m.target}`}
              yAxisId="left"
              x={m.fromStep}
              stroke={m.target === 'positive' ? '#1a7f37' : '#cf222e'}
              strokeDasharray="4 3"
              label={{ value: `→ ${m.target}`, position: 'insideTopLeft', fontSize: 10 }}
              ifOverflow="extendDomain"
            />
          ))}
        </ComposedChart>
      </ResponsiveContainer>
    </figure>
  );
});

export function Charts() {
  const metrics = useStudio((s) => s.metrics);
  const marks = useStudio((s) => s.marks);
  return (
    <section className="charts" aria-label="Training charts">
      {CHARTS.map((spec) => (
        <StatChart key={spec.testId} spec={spec} metrics={metrics} marks={marks} />
      ))}
    </section>
  );
}
