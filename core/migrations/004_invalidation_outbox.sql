-- Invalidations that could not be published when their change was saved (the transport was down). Any
-- instance publishes them once it can, then deletes them, so a change is announced even if the instance that
-- made it stops first.
CREATE TABLE invalidation_outbox (
  id         bigserial PRIMARY KEY,
  message    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
