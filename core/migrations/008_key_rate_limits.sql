-- An API key's own rate limit ({"limit": n, "window_seconds": s}) and quotas ({"daily": n, "monthly": n}); NULL: none.
ALTER TABLE api_keys ADD COLUMN rate_limit jsonb;
ALTER TABLE api_keys ADD COLUMN quota jsonb;
-- Requests counted against a key's quotas, per period ('day' 2026-12-05, 'month' 2026-12-01), summed by the gateways.
CREATE TABLE api_key_usage (
  key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
  period text NOT NULL,
  period_start date NOT NULL,
  requests bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (key_id, period, period_start)
);
