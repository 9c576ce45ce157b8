-- Install-once: tables of text, their indexes, constraints and comments.
-- CREATE EXTENSION runs this once; a change to a table here needs the same
-- change, as ALTER, in src/sql/updates/<released>--<next>.sql.

CREATE TABLE cs.text_category_rules (
    category  text   NOT NULL,
    kind      text   NOT NULL,
    term      text   NOT NULL,
    weight    float8 NOT NULL DEFAULT 1,
    query     tsquery NOT NULL,
    PRIMARY KEY (category, kind, term)
);
COMMENT ON TABLE cs.text_category_rules IS
    'Rules of cs.ticket_category: a text belongs to a category when the weights of the category''s rules it matches sum to 1 or more.  Validated on write.';
COMMENT ON COLUMN cs.text_category_rules.category IS 'Category name: lower-case letters, digits and underscores, starting with a letter.';
COMMENT ON COLUMN cs.text_category_rules.kind IS 'word (one word, any inflection) or phrase (two or more words in order, any inflections).';
COMMENT ON COLUMN cs.text_category_rules.term IS 'The word or phrase, matched after English stemming (to_tsvector(''english'', ...)); stop words cannot be matched.';
COMMENT ON COLUMN cs.text_category_rules.weight IS 'Contribution to the category, non-zero between -10 and 10; a negative weight counts against it.';
COMMENT ON COLUMN cs.text_category_rules.query IS 'The term as a text search query; set on write.';

-- Per category, the OR of its positive rules: a text that matches none of them
-- cannot reach the category's threshold, so most texts cost one match per
-- category instead of one per rule.
CREATE TABLE cs.text_category_filters (
    category  text PRIMARY KEY,
    query     tsquery NOT NULL
);
COMMENT ON TABLE cs.text_category_filters IS
    'Internal: per category the OR of the queries of its positive-weight rules in cs.text_category_rules, rebuilt on every change of the rules.';
COMMENT ON COLUMN cs.text_category_filters.category IS 'The category.';
COMMENT ON COLUMN cs.text_category_filters.query IS 'Matches every text that matches one of the category''s positive-weight rules.';

-- Cache of the text signals the features read: a full refresh classifies
-- about two texts per customer, each stemmed for the category prefilter, and
-- most of them did not change since the refresh before.  Entries are checked
-- against the text and the rules at every read, so a missing or stale entry
-- never changes a feature: it is only slower (the text is classified inline).
CREATE TABLE cs.text_signals (
    source       text    NOT NULL CHECK (source IN ('ticket', 'nps_comment')),
    id           bigint  NOT NULL,
    text_hash    bigint  NOT NULL,
    rules_stamp  bigint  NOT NULL,
    sentiment    float8,
    categories   text[],
    PRIMARY KEY (source, id)
);
COMMENT ON TABLE cs.text_signals IS
    'Internal: cached text signals of the tickets and NPS comments of the last 90 days, filled by cs._refresh_text_signals() (full refreshes) and read by cs.compute_features() when text_hash and rules_stamp still match.';
COMMENT ON COLUMN cs.text_signals.source IS 'ticket (cs.support_tickets) or nps_comment (cs.nps_responses).';
COMMENT ON COLUMN cs.text_signals.id IS 'The id of the ticket or NPS response.';
COMMENT ON COLUMN cs.text_signals.text_hash IS 'hashtextextended(text, 0) of the text classified: "subject. body" of a ticket (trimmed, blank parts left out), the comment of an NPS response.';
COMMENT ON COLUMN cs.text_signals.rules_stamp IS 'cs._text_signals_stamp() when the entry was computed; an entry of another stamp is ignored.';
COMMENT ON COLUMN cs.text_signals.sentiment IS 'cs.sentiment of a ticket''s text; NULL for NPS comments (the features take no sentiment of them in the 90-day window).';
COMMENT ON COLUMN cs.text_signals.categories IS 'Categories cancellation_intent and competitor_mention of the text, as cs.compute_features() computes them: NULL when the text matches no positive rule of either.';
