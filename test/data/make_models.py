#!/usr/bin/python3
"""Generates the reference models and expected predictions used by sql/model.sql.

Run with Debian's python3-xgboost 1.7.4 (the same version as libxgboost):
    /usr/bin/python3 test/data/make_models.py
The tests do not run this script; they read the committed files and the
expected values it prints, which are pasted into sql/model.sql.
"""
import os
import numpy as np
import xgboost as xgb

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(os.path.dirname(here))
names = ['logins', 'tickets', 'nps', 'seats_used', 'late_invoices', 'tenure']


def data(seed, n=2000, nf=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, nf)).astype(np.float32)
    X[rng.random(size=X.shape) < 0.1] = np.nan
    z = np.nan_to_num(X[:, 0]) - 0.8 * np.nan_to_num(X[:, 1]) + 0.5 * np.nan_to_num(X[:, 2]) * np.nan_to_num(X[:, 3])
    y = (z + rng.normal(scale=0.5, size=n) > 0).astype(np.float32)
    return X, y


X, y = data(1)
d = xgb.DMatrix(X, label=y, feature_names=names, missing=np.nan)
tiny = xgb.train({'max_depth': 3, 'eta': 0.3, 'objective': 'binary:logistic', 'nthread': 1,
                  'seed': 7}, d, 15)
tiny.save_model(os.path.join(here, 'tiny_model.json'))
tiny.save_model(os.path.join(here, 'tiny_model.ubj'))
tiny.save_model(os.path.join(top, 'models', 'example_custom.json'))

# A different model with the same features, for version/cache tests.
X2, y2 = data(2)
v2 = xgb.train({'max_depth': 4, 'eta': 0.5, 'objective': 'binary:logistic', 'nthread': 1,
                'seed': 7}, xgb.DMatrix(X2, label=y2, feature_names=names), 10)
v2.save_model(os.path.join(here, 'tiny_model_v2.json'))

# Other objectives.
reg = xgb.train({'max_depth': 3, 'objective': 'reg:squarederror', 'nthread': 1, 'base_score': 0.25},
                xgb.DMatrix(X, label=y * 3 + 1, feature_names=names), 8)
reg.save_model(os.path.join(here, 'reg_model.json'))
raw = xgb.train({'max_depth': 3, 'objective': 'binary:logitraw', 'nthread': 1},
                xgb.DMatrix(X, label=y, feature_names=names), 8)
raw.save_model(os.path.join(here, 'logitraw_model.json'))

# Unsupported models.
pois = xgb.train({'max_depth': 2, 'objective': 'count:poisson', 'nthread': 1},
                 xgb.DMatrix(X, label=y), 2)
pois.save_model(os.path.join(here, 'poisson_model.json'))
lin = xgb.train({'booster': 'gblinear', 'objective': 'binary:logistic', 'nthread': 1},
                xgb.DMatrix(np.nan_to_num(X), label=y), 2)
lin.save_model(os.path.join(here, 'linear_model.json'))
multi = xgb.train({'max_depth': 2, 'objective': 'multi:softprob', 'num_class': 3, 'nthread': 1},
                  xgb.DMatrix(X, label=(np.nan_to_num(X[:, 0]) > 0) + (np.nan_to_num(X[:, 1]) > 0)), 2)
multi.save_model(os.path.join(here, 'multiclass_model.json'))
Xc = np.nan_to_num(X.copy())
Xc[:, 5] = np.abs(np.round(Xc[:, 5] * 2)) % 4
dc = xgb.DMatrix(Xc, label=y, feature_types=['q'] * 5 + ['c'], enable_categorical=True)
cat = xgb.train({'max_depth': 2, 'objective': 'binary:logistic', 'tree_method': 'hist', 'nthread': 1,
                 'max_cat_to_onehot': 1}, dc, 3)
cat.save_model(os.path.join(here, 'categorical_model.json'))

# Probe rows with NaNs and exact thresholds; expected values from libxgboost.
probe = np.array([
    [0.5, -0.2, 1.0, 0.3, -1.0, 0.0],
    [np.nan, np.nan, np.nan, np.nan, np.nan, np.nan],
    [-2.0, 1.5, np.nan, -0.7, 0.2, 1.1],
    [1.2, np.nan, 0.4, 2.0, np.nan, -0.5],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [3.0, -3.0, 3.0, 3.0, -3.0, 3.0],
    [-3.0, 3.0, -3.0, -3.0, 3.0, -3.0],
    [0.1, 0.9, -0.4, np.nan, 1.7, -1.2],
    [np.nan, -1.1, 0.8, -0.9, np.nan, 0.6],
    [-0.6, 0.25, 1.9, 0.05, -0.3, np.nan],
], dtype=np.float32)
# Row 11: every feature at a split threshold of the first tree (exact hits).
import json
tree0 = json.loads(tiny.save_raw('json'))['learner']['gradient_booster']['model']['trees'][0]
row = np.zeros(6, dtype=np.float32)
for i, left in enumerate(tree0['left_children']):
    if left != -1:
        row[tree0['split_indices'][i]] = np.float32(tree0['split_conditions'][i])
probe = np.vstack([probe, row])
dp = xgb.DMatrix(probe, feature_names=names, missing=np.nan)


def arr(r):
    return "'{" + ",".join('NaN' if np.isnan(v) else repr(float(v)) for v in r) + "}'"


print('-- tiny_model expected (row, features, prediction, margin)')
p = tiny.predict(dp)
mg = tiny.predict(dp, output_margin=True)
for i, r in enumerate(probe):
    print(f"({i + 1}, {arr(r)}::float4[], {p[i]:.9g}, {mg[i]:.9g}),")
print('-- v2 on row 1:', f"{v2.predict(dp)[0]:.9g}")
print('-- reg on rows 1..3:', [f"{v:.9g}" for v in reg.predict(dp)[:3]])
print('-- logitraw on rows 1..3:', [f"{v:.9g}" for v in raw.predict(dp)[:3]])
