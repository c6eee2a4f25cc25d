/** Reverse-mode autograd: recording, the gradient-rule table, backward, gradcheck. */
export { dropIntermediate, isGradEnabled, needsGrad, noGrad, record, releasingActivations, withActivationRelease } from './graph.js';
export type { GradNode } from './graph.js';
export { gradientRule, registerGradient, registeredOps } from './registry.js';
export type { GradRule } from './registry.js';
export { backward, tape } from './backward.js';
export type { BackwardOptions } from './backward.js';
export { gradcheck } from './gradcheck.js';
export { savedMemory } from './saved_memory.js';
export type { SavedMemory } from './saved_memory.js';
export type { GradcheckFailure, GradcheckOptions, GradcheckResult } from './gradcheck.js';
export { Profiler, activeProfiler, profiled } from './profile.js';
export type { ProfileEntry, ProfilePhase } from './profile.js';
