// Rollouts as the pages see them: which phases are unfinished, and which rollout holds a flag or
// a route (one place, so that the overview, the flags and the routes pages agree).

// An unfinished rollout: it owns its target (progressing) or may resume (paused).
export const isActive = (phase) => phase === 'progressing' || phase === 'paused';

// The unfinished rollout on each target of `kind` ('flag' or 'route') of the config's rollouts
// ({name: {spec, status}}): Map target → [rollout name, phase].
export function activeRollouts(rollouts, kind) {
  const out = new Map();
  for (const [name, r] of Object.entries(rollouts || {}))
    if (r && r.spec && r.spec[kind] && r.status && isActive(r.status.phase)) out.set(r.spec[kind], [name, r.status.phase]);
  return out;
}
