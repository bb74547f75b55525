/**
 * KL coefficient controllers: TRL 0.9.6 AdaptiveKLController / FixedKLController (Ziegler et al.
 * 2019, "Fine-Tuning Language Models from Human Preferences", section 2.2).
 *
 * The trainer calls update(stats['objective/kl'], batch_size) once per PPO step, after the step's
 * rewards used `value` (so objective/kl_coef logs the value before the update).
 */

export interface KLController {
  /** The current KL coefficient (TRL kl_ctl.value). */
  readonly value: number;
  /** Update after a step whose mean per-sequence KL was `current`, over `nSteps` samples. */
  update(current: number, nSteps: number): void;
}

/**
 * value *= 1 + clip(current / target - 1, -0.2, 0.2) * nSteps / horizon.
 * The coefficient grows while the KL is above target and shrinks below it, by at most 20% of
 * nSteps/horizon per update.
 */
export class AdaptiveKLController implements KLController {
  value: number;
  constructor(
    initKlCoef: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    this.value = initKlCoef;
  }

  update(current: number, nSteps: number): void {
    // Like np.clip, Math.min/max keep NaN: a NaN KL makes the coefficient NaN, as in TRL.
    const proportionalError = Math.min(Math.max(current / this.target - 1, -0.2), 0.2);
    this.value *= 1 + (proportionalError * nSteps) / this.horizon;
  }
}

/** A constant coefficient; update does nothing. */
export class FixedKLController implements KLController {
  constructor(readonly value: number) {}

  update(_current: number, _nSteps: number): void {}
}

/** The controller PPOTrainer.__init__ builds: adaptive when adap_kl_ctrl, else fixed. */
export function makeKLController(config: {
  adap_kl_ctrl: boolean;
  init_kl_coef: number;
  target: number;
  horizon: number;
}): KLController {
  return config.adap_kl_ctrl
    ? new AdaptiveKLController(config.init_kl_coef, config.target, config.horizon)
    : new FixedKLController(config.init_kl_coef);
}
