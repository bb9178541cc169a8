// pm2 processes for a Gaia host: `pm2 start deploy/pm2/ecosystem.config.js` (see
// deploy/README.md). Settings come from .env in `cwd` (a copy of deploy/gaia.env.example);
// remove the apps this host does not run. pm2 has no HTTP health check of its own, so the
// gaia-healthcheck app asks each process's /healthz every minute and restarts it through pm2.
const GAIA_HOME = "/opt/gaia";
const PYTHON = `${GAIA_HOME}/.venv/bin/python`;
const WORKER_PORTS = [9102, 9103];

// Restart on a crash: 5 s, then 1.5 times longer each time up to pm2's cap of 15 s, the delay
// reset once a process has run 30 s; pm2 gives up only after 1000 crashes in a row.
const RESTARTS = {
  autorestart: true,
  exp_backoff_restart_delay: 5000,
  max_restarts: 1000,
  min_uptime: 30000,
  kill_timeout: 60000, // SIGTERM first: running jobs get --shutdown-grace (30 s) to finish
};

const python = (name, args) => ({
  name,
  cwd: GAIA_HOME,
  script: PYTHON,
  args,
  interpreter: "none",
  exec_mode: "fork",
  ...RESTARTS,
});

module.exports = {
  apps: [
    python("gaia-validator", ["-m", "gaia.validator", "--metrics.port", "9101"]),
    // Extra job workers, one app each so the health check restarts only the sick one;
    // their /metrics and /healthz on 9102, 9103, ...
    ...WORKER_PORTS.map((port) =>
      python(`gaia-validator-worker-${port}`, ["-m", "gaia.validator", "worker",
                                               "--metrics.port", String(port)])),
    python("gaia-miner", ["-m", "gaia.miner"]),
    {
      name: "gaia-healthcheck",
      cwd: GAIA_HOME,
      script: `${GAIA_HOME}/deploy/gaia-healthcheck`,
      args: [
        "pm2 restart",
        "gaia-validator=http://127.0.0.1:9101/healthz",
        ...WORKER_PORTS.map(
          (port) => `gaia-validator-worker-${port}=http://127.0.0.1:${port}/healthz`),
        "gaia-miner=http://127.0.0.1:8091/healthz",
      ],
      interpreter: "none",
      env: { GAIA_HEALTH_EVERY_S: 60 },
      ...RESTARTS,
    },
  ],
};
