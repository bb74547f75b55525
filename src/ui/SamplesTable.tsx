import { useStudio } from '../store/store.ts';
import { fmtNum } from './format.ts';

/** The latest step's rollouts: query, the policy's response, the reward model's score. */
export function SamplesTable() {
  const samples = useStudio((s) => s.samples);
  return (
    <section className="panel samples" data-testid="samples" aria-labelledby="samples-title">
      <h2 id="samples-title">
        Samples
        {samples && (
          <span className="sub">
            {' '}
            · step {samples.step}, rewarded for {samples.target}
          </span>
        )}
      </h2>
      {!samples ? (
        <p className="hint">Each PPO step's queries, responses and rewards appear here.</p>
      ) : (
        <div className="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">query</th>
                <th scope="col">response</th>
                <th scope="col" className="num">
                  reward
                </th>
              </tr>
            </thead>
            <tbody>
              {samples.rows.map((r, i) => (
                <tr key={i}>
                  <td className="text">{r.query}</td>
                  <td className="text response">{r.response}</td>
                  <td className={`num ${r.score >= 0 ? 'ok' : 'bad'}`}>{fmtNum(r.score)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
