-- When the expiry of a key was written to the audit trail (once per key, by whichever instance saw it first).
ALTER TABLE api_keys ADD COLUMN expiry_recorded_at timestamptz;
CREATE INDEX api_keys_expiry_pending_idx ON api_keys (expires_at) WHERE expiry_recorded_at IS NULL AND revoked_at IS NULL AND expires_at IS NOT NULL;
