-- Data of the training benchmark (bench.sh, section train): train_rows, 100,000
-- deterministic rows of 30 features in [0, 10) (1 in 23 missing) and a label
-- that depends nonlinearly on 6 of them, plus uniform noise.  is_valid is the
-- validation split cs.train_model makes with id as group_key: the hash of
-- id::text below 20% of the 32-bit range (src/train.c, validation_fraction 0.2).
SET client_min_messages = warning;
DROP TABLE IF EXISTS train_rows;
CREATE TABLE train_rows AS
WITH r AS (
    SELECT g AS id,
           array(SELECT CASE WHEN hashint4(g * 37 + j + 7000000) % 23 = 0 THEN 'NaN'::float4
                             ELSE ((hashint4(g * 37 + j + 7000000) & 65535) / 6553.6)::float4 END
                   FROM generate_series(1, 30) j) AS features,
           ((hashint4(g + 90000000) & 65535) / 65536.0 - 0.5) * 4 AS noise
      FROM generate_series(1, 100000) g
), v AS (
    SELECT id, features, noise,
           coalesce(nullif(features[1], 'NaN'), 5) AS x1, coalesce(nullif(features[2], 'NaN'), 5) AS x2,
           coalesce(nullif(features[3], 'NaN'), 5) AS x3, coalesce(nullif(features[4], 'NaN'), 5) AS x4,
           coalesce(nullif(features[5], 'NaN'), 5) AS x5, coalesce(nullif(features[6], 'NaN'), 5) AS x6
      FROM r
)
SELECT id, features,
       sin(x1) * x2 + (x3 - 5) ^ 2 / 5 + x4 * x5 / 10 - CASE WHEN x6 > 7 THEN 2 ELSE 0 END + noise > 4 AS label,
       (hashtext(id::text)::bigint & 4294967295) < 858993459 AS is_valid
  FROM v;
ALTER TABLE train_rows ADD PRIMARY KEY (id);
VACUUM ANALYZE train_rows;
SELECT count(*) AS rows, round(avg(label::int), 3) AS positive_rate, count(*) FILTER (WHERE is_valid) AS validation_rows
  FROM train_rows;
