-- The successor a refresh token was rotated into: a client retrying within the reuse window replaces that
-- successor instead of adding a second one, so a session's refresh family stays a single live token.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by text;
