-- The contract's user fields: verification flag, profile, preferences and limits (stored and returned, opaque to
-- Keygate). Every user has an email: users created before it was required get `<username>@users.invalid`
-- (RFC 2606 reserves `.invalid`, so it can never reach anyone), which they or a superuser replace with PUT /me.
-- Emails are kept in their canonical form (NFKC, lowercase), as logins look them up.
ALTER TABLE users ADD COLUMN is_verified boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN bio text;
ALTER TABLE users ADD COLUMN avatar_url text;
ALTER TABLE users ADD COLUMN phone_number text;
ALTER TABLE users ADD COLUMN default_llm_provider text;
ALTER TABLE users ADD COLUMN default_profile_id text;
ALTER TABLE users ADD COLUMN daily_message_limit integer;
ALTER TABLE users ADD COLUMN monthly_message_limit integer;
ALTER TABLE users ADD COLUMN max_file_size_mb integer;
UPDATE users SET email = lower(username) || '@users.invalid' WHERE email IS NULL;
UPDATE users SET email = lower(email) WHERE email <> lower(email);
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
