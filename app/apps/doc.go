// Package apps serves apps: dashboards whose content comes from an upstream
// URL (Streamlit, Dash, Grafana, Jupyter, Node-RED…), each at an origin of
// its own, SLUG.<apps-domain>, by the same listener as the rest of
// Gatehouse, routed by Host. An app is a dashboard for everything else
// (grants, the one decision, requests, the home page); this package is only
// the gate in front of the upstream:
//
//   - the sign-in handshake: an app origin has no session of its own; it
//     sends the viewer to the main origin, which decides and hands back a
//     one-time code (db.IssueAppCode) that the app origin redeems for a
//     host-only cookie bound to the same server-side session;
//   - every request and WebSocket upgrade decided before it is forwarded
//     (httputil.ReverseProxy), Gatehouse's cookies and client-sent identity
//     headers stripped, the viewer's identity and a signed assertion set;
//   - every open connection of a session to an app cut when that viewer's
//     access to it ends (the store's access feed);
//   - forward authentication (forward.go): the same decision answered to a
//     team's own proxy (nginx auth_request, Caddy forward_auth, Traefik,
//     ingress-nginx) for an app it serves at the app's external URL, with
//     the handshake's other half on that host's /.gatehouse/ paths.
//
// The server lends it what it needs through Gate (who holds a session) and
// mounts Handler.ServeHTTP for app hosts and Handler.JWKS for the keys.
package apps
