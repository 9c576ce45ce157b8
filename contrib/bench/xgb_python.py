#!/usr/bin/python3
"""Python baselines for bench.sh, with Debian's python3-xgboost, numpy and psycopg2.

  xgb_python.py pipeline DSN RUNS
      Client-side scoring of bench_rows with model 'bench': fetch (id, features)
      with psycopg2, batch predict (DMatrix from numpy, nthread 1), COPY
      (id, score) into scores_client and commit.  Each run is timed end to
      end, from the query to the commit, on an open connection (as bench.sh
      times the in-database INSERT); the booster is loaded once, untimed.

  xgb_python.py train DSN RUNS PARAMS_JSON
      Trains on train_rows (features, label, is_valid; ORDER BY id, the order
      cs.train_model reads them in) with the same parameters as cs.train_model:
      DMatrix construction and xgb.train with the validation set evaluated each
      round are timed; fetching the rows is not.

Both print one JSON object on stdout.
"""
import json
import sys
import time

import numpy as np
import psycopg2
import xgboost as xgb


def load_booster(conn, name):
    with conn.cursor() as cur:
        cur.execute("SELECT model FROM cs.models WHERE name = %s ORDER BY version DESC LIMIT 1", (name,))
        raw = bytes(cur.fetchone()[0])
    bst = xgb.Booster()
    bst.load_model(bytearray(raw))
    bst.set_param({"nthread": 1})
    return bst


def pipeline(dsn, runs):
    with psycopg2.connect(dsn) as conn:
        bst = load_booster(conn, "bench")
    conn.close()
    secs = []
    for _ in range(runs):
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("TRUNCATE scores_client")
            cur.execute("CHECKPOINT")
        conn.close()
        conn = psycopg2.connect(dsn)
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("SELECT id, features FROM bench_rows")
            rows = cur.fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        x = np.array([r[1] for r in rows], dtype=np.float32)
        scores = bst.predict(xgb.DMatrix(x, missing=np.nan, nthread=1, feature_names=bst.feature_names))
        buf = "".join("%d\t%r\n" % (i, float(s)) for i, s in zip(ids.tolist(), scores.tolist()))
        with conn.cursor() as cur:
            cur.copy_expert("COPY scores_client (id, score) FROM STDIN", _Reader(buf))
        conn.commit()
        conn.close()
        secs.append(time.perf_counter() - t0)
    print(json.dumps({"secs": secs, "rows": len(rows)}))


class _Reader:
    """A file-like object over a string, for copy_expert."""

    def __init__(self, text):
        self.data = text.encode()
        self.pos = 0

    def read(self, size=-1):
        if size is None or size < 0:
            size = len(self.data) - self.pos
        chunk = self.data[self.pos:self.pos + size]
        self.pos += len(chunk)
        return chunk

    readline = read


def auc(scores, labels):
    """ROC AUC by the rank sum, ties sharing their average rank (as src/train.c)."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1
        i = j + 1
    y = labels[order]
    pos = float((y == 1).sum())
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos))


def train(dsn, runs, params_json):
    p = json.loads(params_json)
    num_round = p.pop("num_round")
    p.pop("early_stopping_rounds", None)    # 0 in bench.sh: every round kept, as here
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist",
              "nthread": 1, "seed": 0}
    params.update(p)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT features, label::int, is_valid FROM train_rows ORDER BY id")
        rows = cur.fetchall()
    conn.close()
    x = np.array([r[0] for r in rows], dtype=np.float32)
    y = np.array([r[1] for r in rows], dtype=np.float32)
    v = np.array([r[2] for r in rows], dtype=bool)
    xt, yt, xv, yv = x[~v], y[~v], x[v], y[v]
    secs, aucs = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        dtrain = xgb.DMatrix(xt, label=yt, missing=np.nan, nthread=1)
        dvalid = xgb.DMatrix(xv, label=yv, missing=np.nan, nthread=1)
        bst = xgb.train(params, dtrain, num_round, evals=[(dvalid, "valid")], verbose_eval=False)
        secs.append(time.perf_counter() - t0)
        aucs.append(auc(bst.predict(dvalid).astype(np.float64), yv))
    print(json.dumps({"secs": secs, "auc": aucs, "rows_train": int(len(yt)), "rows_valid": int(len(yv)),
                      "trees": len(bst.get_dump())}))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "train":
        train(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(__doc__)
