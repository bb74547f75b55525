/** PPO maths of TRL 0.9.6's legacy PPOTrainer, as pure functions. See each module's header. */
export * from './core.ts';
export * from './rewards.ts';
export * from './advantages.ts';
export * from './loss.ts';
export * from './kl-controller.ts';
export * from './scores.ts';
export * from './config.ts';
export * from './stats.ts';
export * from './ppo-case.ts';
