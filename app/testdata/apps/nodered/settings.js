// Node-RED settings for app/apps_upstreams_test.go: the runtime only (no
// editor), on 127.0.0.1 at $PORT, with the dashboard at /ui.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: parseInt(process.env.PORT, 10),
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: false,
    telemetry: { enabled: false },
    logging: { console: { level: "warn" } },
    ui: { path: "ui" },
};
