// Overview: the config version, routes with their clusters or weights, clusters with endpoint
// health, and the rollouts in progress. Refreshed every 2 s.
import { h, fill } from '../dom.js';
import { fmtWeight, fmtDuration } from '../format.js';
import { isActive, activeRollouts } from '../rollout_util.js';

// "canary 10% · stable 90%", or "cluster stable".
export function routeTarget(route) {
  const arms = route.split && Array.isArray(route.split.arms) ? route.split.arms : null;
  if (arms) return arms.map((a) => `${a.name} ${fmtWeight(a.weight)}`).join(' · ');
  return `cluster ${route.cluster}`;
}

export function routeMatch(route) {
  const m = route.match || {};
  return `${m.host || '*'}${m.path_prefix || '/'}`;
}

// What a rollout moves: 'route "shop"' or 'flag "new-checkout"'.
export function rolloutTarget(spec) {
  if (!spec) return '';
  return spec.flag ? `flag "${spec.flag}" → ${spec.variant}` : `route "${spec.route}" → ${spec.canary_arm}`;
}

export function mount(main, ctx) {
  const stat = (id, label) => h('div', { class: 'card stat' }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value', id }, '–'));
  const routes = h('table', { id: 'ov-routes', class: 'grid-table' });
  const clusters = h('div', { id: 'ov-clusters', class: 'cluster-grid' });
  const active = h('div', { id: 'ov-rollouts' });
  fill(main,
    h('div', { class: 'stats-row' },
      stat('ov-version', 'Config version'), stat('ov-flags-count', 'Flags'),
      stat('ov-routes-count', 'Routes'), stat('ov-clusters-count', 'Clusters'),
      stat('ov-rollouts-count', 'Active rollouts')),
    h('div', { class: 'columns' },
      h('section', { class: 'card' }, h('h2', {}, 'Active rollouts ', h('a', { href: '#/rollouts', class: 'small' }, 'all rollouts →')), active),
      h('section', { class: 'card' }, h('h2', {}, 'Routes ', h('a', { href: '#/routes', class: 'small' }, 'edit →')), routes)),
    h('section', { class: 'card' }, h('h2', {}, 'Clusters'), clusters));

  ctx.poll(async (read) => {
    const [config, endpoints] = await Promise.all([read.get('/api/v1/config'), read.tryGet('/api/v1/stats/endpoints')]);
    const flagKeys = Object.keys((config.flags && config.flags.flags) || {});
    const list = Object.entries(config.rollouts || {}).filter(([, r]) => r.status && isActive(r.status.phase));
    main.querySelector('#ov-version').textContent = String(config.version);
    main.querySelector('#ov-flags-count').textContent = String(flagKeys.length);
    main.querySelector('#ov-routes-count').textContent = String(config.routes.length);
    main.querySelector('#ov-clusters-count').textContent = String(Object.keys(config.clusters).length);
    main.querySelector('#ov-rollouts-count').textContent = String(list.length);

    const underRollout = activeRollouts(config.rollouts, 'route');
    fill(routes,
      h('tr', {}, h('th', {}, 'route'), h('th', {}, 'match'), h('th', {}, 'target')),
      config.routes.map((r) => h('tr', { 'data-route': r.name },
        h('td', { class: 'name' }, r.name),
        h('td', { class: 'mono muted' }, routeMatch(r)),
        h('td', {}, h('span', { class: 'route-target' }, routeTarget(r)),
          underRollout.has(r.name) ? h('span', { class: 'badge phase-progressing' }, `rollout ${underRollout.get(r.name)[0]}`) : null))));

    const health = new Map(((endpoints && endpoints.endpoints) || []).map((e) => [`${e.cluster}\n${e.endpoint}`, e]));
    fill(clusters, ...Object.entries(config.clusters).map(([name, c]) => h('div', { class: 'cluster', 'data-cluster': name },
      h('h3', {}, name, c.health_check ? h('span', { class: 'muted small' }, ` health check ${c.health_check.path || '/healthz'}`) : null),
      h('ul', { class: 'endpoints' }, (c.endpoints || []).map((ep) => {
        const e = health.get(`${name}\n${ep}`);
        const state = !e ? 'not checked' : e.healthy ? 'healthy' : 'unhealthy';
        return h('li', { 'data-endpoint': ep },
          h('span', { class: 'mono' }, ep), ' ',
          h('span', { class: `health ${state.replace(' ', '-')}`, title: e ? `checks passed ${e.passed}, failed ${e.failed}` : null }, state));
      })))));

    fill(active, list.length === 0 ? h('p', { class: 'muted' }, 'No rollout in progress.') :
      h('ul', { class: 'rollout-list' }, list.map(([name, r]) => {
        const total = (r.spec.steps || []).length;
        return h('li', { 'data-rollout': name },
          h('a', { href: '#/rollouts', class: 'name' }, name), ' ',
          h('span', { class: `phase badge phase-${r.status.phase}` }, r.status.phase), ' ',
          h('span', { class: 'muted' }, rolloutTarget(r.spec)), ' ',
          h('span', {}, `step ${r.status.step + 1}/${total} · canary ${fmtWeight(r.status.canary_weight)}`), ' ',
          h('span', { class: 'muted' }, `running ${fmtDuration(Date.now() - r.status.started_ms)}`));
      })));
    ctx.ready();
  }, 2000);
}
