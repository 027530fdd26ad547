-- Accounts, credentials and the audit trail. Runs unchanged on PostgreSQL and PGlite.
CREATE TABLE users (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  username           text NOT NULL,
  email              text,
  full_name          text,
  password_hash      text NOT NULL,
  is_active          boolean NOT NULL DEFAULT true,
  is_superuser       boolean NOT NULL DEFAULT false,
  -- tokens issued before this instant are dead (password change, deactivation, log out everywhere)
  tokens_valid_after timestamptz NOT NULL DEFAULT '1970-01-01T00:00:00Z',
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  last_login_at      timestamptz
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id      uuid NOT NULL REFERENCES users (id),
  name         text NOT NULL,
  key_hash     text NOT NULL,             -- SHA-256 hex of the whole key; the key itself is never stored
  display      text NOT NULL,             -- sk_live_abcd…wxyz
  scopes       text[] NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

-- A login session: the family of refresh tokens issued from one login.
CREATE TABLE sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES users (id),
  created_at     timestamptz NOT NULL DEFAULT now(),
  revoked_at     timestamptz,
  revoked_reason text
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
  token_hash  text PRIMARY KEY,           -- SHA-256 hex of the token
  session_id  uuid NOT NULL REFERENCES sessions (id),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  spent_at    timestamptz
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);

CREATE TABLE audit_events (
  id              bigserial PRIMARY KEY,
  at              timestamptz NOT NULL DEFAULT now(),
  event           text NOT NULL,
  actor_user_id   uuid,
  subject_user_id uuid,
  key_id          uuid,
  client_address  text,
  detail          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_subject_idx ON audit_events (subject_user_id, id);

-- Secrets Keygate generates for itself on first start (token signing secret, identity signing key), shared by
-- every instance on this database. Configuration can supply them instead.
CREATE TABLE keygate_secrets (
  name       text PRIMARY KEY,
  value      text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
