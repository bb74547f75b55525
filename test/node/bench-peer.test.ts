/**
 * `bench --peer`: the cases go to the peer as JSON on stdin and its times come back beside ours with
 * ratios. A stand-in peer (Node, since CI has no Python) answers with fixed times, so every expected
 * number here is arithmetic on those.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BENCH_MODELS } from '../../src/bench/models.ts';
import { modelShape, runPeer, type PeerCase } from '../../src/bench/peer.ts';
import { TRL_PPO_SHAPE } from '../../src/bench/ppo-step.ts';
import { mergePeer, type BenchCase } from '../../src/cli/bench.ts';

const FAKE_PEER = `
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const { reps, cases } = JSON.parse(input);
  console.log('a log line the bench must skip');
  console.log(JSON.stringify({ device: 'fake', torch: '0', transformers: '0', cases: cases.map((c, i) => ({
    id: c.id, ms: 10 * (i + 1) * reps, peak_bytes: c.kind === 'ppo' ? null : 1000, rss_peak_bytes: 5,
  })) }));
});`;

describe('bench --peer', () => {
  test("the peer's times and memory land beside ours, with peer_ratio = peer_ms / ours_ms", () => {
    const dir = mkdtempSync(join(tmpdir(), 'peer-'));
    try {
      const script = join(dir, 'peer.mjs');
      writeFileSync(script, FAKE_PEER);
      const config = modelShape(BENCH_MODELS.tiny);
      const specs: PeerCase[] = [
        { id: 'train', kind: 'train', config, B: 2, T: 8 },
        { id: 'ppo', kind: 'ppo', config, shape: TRL_PPO_SHAPE },
      ];
      const report = runPeer(process.execPath, specs, 2, script);
      expect(report.device).toBe('fake');
      const ours = (name: string, ms: number): BenchCase => ({
        name,
        ours_ms: ms,
        baseline: null,
        baseline_ms: null,
        ratio: null,
      });
      const cases = [
        { c: ours('train', 5), peer: specs[0] },
        { c: ours('ppo', 80), peer: specs[1] },
        { c: ours('ours only', 1), peer: null },
      ];
      mergePeer(cases, report);
      // The fake peer answers 10 * (index + 1) * reps ms: 20 ms and 40 ms.
      expect(cases[0].c).toMatchObject({ peer_ms: 20, peer_ratio: 4, peer_peak_bytes: 1000 });
      expect(cases[1].c).toMatchObject({
        peer_ms: 40,
        peer_ratio: 0.5,
        peer_peak_bytes: null,
        peer_rss_peak_bytes: 5,
      });
      expect(cases[2].c.peer_ms).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a failing peer is an error naming it', () => {
    expect(() => runPeer(process.execPath, [], 1, '/nonexistent/peer.py')).toThrow(/exited with/);
  });
});
