-- Install-once: the outbox that external senders (mail, Slack, a CRM) drain.
-- A change here needs the same change, as ALTER, in src/sql/updates/.

CREATE TABLE cs.outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text NOT NULL CHECK (topic IN ('alert', 'digest')),
    recipient    text,
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    leased_until timestamptz,
    leased_by    text,
    attempts     int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    acked_at     timestamptz,
    acked_by     text
);
-- Claims read the unacknowledged messages in id order.
CREATE INDEX outbox_pending_idx ON cs.outbox (id) WHERE acked_at IS NULL;
COMMENT ON TABLE cs.outbox IS 'Messages for external senders, delivered at least once: cs.outbox_claim leases a batch, cs.outbox_ack acknowledges it; a message not acknowledged before its lease ends is claimed again. Alerts (at creation) and digests (cs.enqueue_digest) enqueue messages.';
COMMENT ON COLUMN cs.outbox.id IS 'Message id, in enqueue order.';
COMMENT ON COLUMN cs.outbox.topic IS 'alert or digest.';
COMMENT ON COLUMN cs.outbox.recipient IS 'Role name of the CSM the message is for (the alert''s assignee, the digest''s CSM); NULL when nobody is.';
COMMENT ON COLUMN cs.outbox.subject IS 'Subject line.';
COMMENT ON COLUMN cs.outbox.payload IS 'The message: the alert''s fields, or the digest''s html and text.';
COMMENT ON COLUMN cs.outbox.created_at IS 'When the message was enqueued.';
COMMENT ON COLUMN cs.outbox.leased_until IS 'End of the current lease; the message can be claimed again after it unless acknowledged.';
COMMENT ON COLUMN cs.outbox.leased_by IS 'Consumer that claimed the message last.';
COMMENT ON COLUMN cs.outbox.attempts IS 'How many times the message was claimed.';
COMMENT ON COLUMN cs.outbox.acked_at IS 'When a consumer acknowledged the message (NULL while pending).';
COMMENT ON COLUMN cs.outbox.acked_by IS 'Consumer (role) that acknowledged the message.';
