-- Forward authentication: an app may also be served by a team's own proxy
-- (nginx, Caddy, Traefik, ingress-nginx) that asks Gatehouse before each
-- request. external_url records where that proxy serves it: a host
-- (https://grafana.corp.example/) or a path under one
-- (https://tools.corp.example/grafana/). '' for none.
ALTER TABLE apps ADD COLUMN external_url TEXT NOT NULL DEFAULT '';
