"""Campaign measurement and uplift models against causalml and scikit-uplift, side by side in one run.

On Hillstrom's e-mail test, half A (``../shared/data/hillstrom``, read through
the ingest with ``tests/data/real/hillstrom.yml``):

* measurement: ``contact_outcomes`` + ``measure_campaigns`` for visit and
  conversion per e-mail, timed;
* uplift: one e-mail against no e-mail (``--variant``, default the women's
  e-mail, whose effect depends most on what a customer bought before), one
  stratified split (``--holdout`` held out), the same feature matrix for every
  learner. Ours (``UpliftModel``: t-logistic, s-logistic, t-boosting) and the
  peers' (causalml 0.18 S/T/X meta-learners with logistic regression and its
  uplift random forest; scikit-uplift 0.5.1 two-model, solo-model and class
  transformation with logistic regression) each fit on the same rows and score
  the same held-out rows; every score is then judged by the same
  ``ranking_check`` (Qini and uplift@30% with bootstrap intervals). scikit-uplift's
  own ``qini_auc_score`` of each score is printed beside ours as a check of the metric.

The peers are not project dependencies (causalml alone installs 1.7 GB): they
run in the benchmarks' own environment, which bench_accuracy.py shares (its
statsforecast needs pandas < 3), as a subprocess of this script (``--peers IN OUT``):

    python3.11 -m venv benchmarks/.venv-peers
    benchmarks/.venv-peers/bin/pip install "causalml==0.18.*" "scikit-uplift==0.5.1" scikit-learn==1.9.1 "pandas<3"
    .venv/bin/python benchmarks/bench_uplift.py [--variant "Womens E-Mail"] [--outcome visit] [--holdout 0.5]

Last, measurement + features + uplift fit on data/sample are timed (the
planner's share of the 10-second budget is measured by the planner's own tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / "benchmarks" / ".venv-peers" / "bin" / "python"
FEATURES = ["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]
SEED = 0


def peers(data_in: str, data_out: str) -> None:
    """Fit the peers' learners in their own environment; write held-out scores, fit seconds and sklift's Qini."""
    import warnings

    from causalml.inference.meta import BaseSClassifier, BaseTClassifier, BaseXClassifier
    from causalml.inference.tree import UpliftRandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklift.metrics import qini_auc_score
    from sklift.models import ClassTransformation, SoloModel, TwoModels

    warnings.filterwarnings("ignore")
    data = np.load(data_in)
    x, t, y, train, test = data["x"], data["t"], data["y"], data["train"], data["test"]

    def logistic() -> LogisticRegression:
        return LogisticRegression(C=1.0, max_iter=2000)

    def causalml(model):
        def run():
            model.fit(x[train], t[train].astype(int), y[train])
            return np.asarray(model.predict(x[test])).reshape(len(test), -1)[:, 0]
        return run

    def sklift(model):
        def run():
            model.fit(x[train], y[train], t[train])
            return np.asarray(model.predict(x[test]))
        return run

    def forest():
        model = UpliftRandomForestClassifier(control_name="0", n_estimators=50, max_depth=5, random_state=SEED)
        model.fit(x[train], np.where(t[train] == 1, "1", "0"), y[train])
        return np.asarray(model.predict(x[test])).reshape(len(test), -1)[:, 0]

    learners = {
        "causalml T (logistic)": causalml(BaseTClassifier(learner=logistic())),
        "causalml S (logistic)": causalml(BaseSClassifier(learner=logistic())),
        "causalml X (logistic)": causalml(BaseXClassifier(outcome_learner=logistic(),
                                                          effect_learner=LinearRegression())),
        "causalml uplift forest": forest,
        "sklift two models (logistic)": sklift(TwoModels(estimator_trmnt=logistic(), estimator_ctrl=logistic(),
                                                         method="vanilla")),
        "sklift solo model (logistic)": sklift(SoloModel(estimator=logistic())),
        "sklift class transformation": sklift(ClassTransformation(estimator=logistic())),
    }
    out = {}
    for name, run in learners.items():
        started = time.perf_counter()
        score = run()
        out[name] = {"score": score.tolist(), "seconds": time.perf_counter() - started}
    for entry in out.values():
        entry["sklift_qini"] = float(qini_auc_score(y[test], np.asarray(entry["score"]), t[test]))
    Path(data_out).write_text(json.dumps(out))


def sklift_qini(score: np.ndarray, outcome: np.ndarray, treatment: np.ndarray) -> float:
    """scikit-uplift's qini_auc_score of one score, computed in the peers' environment."""
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / "s.npz", s=score, y=outcome, t=treatment)
        code = ("import numpy as np, warnings; warnings.filterwarnings('ignore');"
                "from sklift.metrics import qini_auc_score;"
                f"d=np.load({str(Path(folder) / 's.npz')!r}); print(qini_auc_score(d['y'], d['s'], d['t']))")
        return float(subprocess.run([str(PEERS_PYTHON), "-c", code], check=True, capture_output=True,
                                    text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="Womens E-Mail")
    parser.add_argument("--outcome", default="visit", choices=["visit", "converted"])
    parser.add_argument("--holdout", type=float, default=0.5)
    parser.add_argument("--peers", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peers:
        peers(*args.peers)
        return

    import pandas as pd

    from toolkit.opportunities.experiments import contact_outcomes, measure_campaigns
    from toolkit.opportunities.uplift import (LEARNERS, UpliftModel, customer_features, holdout_split,
                                              ranking_check)
    from toolkit.pipeline import load

    data = Path(os.environ.get("JOURNEYCAST_REAL_DATA", ROOT.parent / "shared" / "data"))
    contacts = load(data / "hillstrom", ROOT / "tests" / "data" / "real" / "hillstrom.yml").tables["contacts"]
    print(f"Hillstrom half A: {len(contacts):,} contacts; visit {contacts['visit'].mean():.5f}, conversion "
          f"{contacts['converted'].mean():.5f}, spend {contacts['revenue'].mean():.5f} per customer "
          "(published for the full data: 0.14678, 0.00903, 1.05091)")

    started = time.perf_counter()
    outcomes = contact_outcomes(contacts)
    for response in ("visit", "converted"):
        table = measure_campaigns(outcomes, response=response, attributes=FEATURES).table
        for _, row in table.iterrows():
            print(f"  {response:9} {row['variant']:13} {row['incremental_response']:+.5f} "
                  f"({row['incremental_response_low']:+.5f}..{row['incremental_response_high']:+.5f}), "
                  f"spend {row['incremental_revenue']:+.3f} ({row['incremental_revenue_low']:+.3f}.."
                  f"{row['incremental_revenue_high']:+.3f}) {row['interval_method']}")
    print(f"measurement (outcomes + 2 x measure_campaigns): {time.perf_counter() - started:.2f} s")

    test_rows = contacts[contacts["variant"].isin([args.variant, "No E-Mail"])].reset_index(drop=True)
    frame = customer_features(test_rows, outcomes=["visit"])[FEATURES]
    x = pd.get_dummies(frame, columns=["zip_code", "channel"], dtype=float)
    x = ((x - x.mean()) / x.std()).to_numpy(float)  # one scaled matrix for every learner
    t = (test_rows["group"] == "treatment").to_numpy(float)
    y = test_rows[args.outcome].to_numpy(float)
    train, test = holdout_split(t, y, args.holdout, SEED)
    scores = {}
    for learner in LEARNERS:
        started = time.perf_counter()
        model = UpliftModel(learner, seed=SEED).fit(pd.DataFrame(x[train]), t[train], y[train])
        seconds = time.perf_counter() - started
        scores[f"journeycast {learner}"] = {"score": model.predict(pd.DataFrame(x[test])).to_numpy(),
                                            "seconds": seconds}
    if PEERS_PYTHON.exists():
        with tempfile.TemporaryDirectory() as folder:
            data_in, data_out = Path(folder) / "in.npz", Path(folder) / "out.json"
            np.savez(data_in, x=x, t=t, y=y, train=train, test=test)
            subprocess.run([str(PEERS_PYTHON), __file__, "--peers", str(data_in), str(data_out)], check=True)
            for name, entry in json.loads(data_out.read_text()).items():
                scores[name] = {"score": np.asarray(entry["score"]), "seconds": entry["seconds"],
                                "sklift_qini": entry["sklift_qini"]}
        for entry in scores.values():
            if "sklift_qini" not in entry:
                entry["sklift_qini"] = sklift_qini(entry["score"], y[test], t[test])
    else:
        print(f"{PEERS_PYTHON} missing: peers not run (see the module docstring)")

    print(f"\n{args.variant} vs No E-Mail, outcome {args.outcome}: {len(train):,} contacts to learn from, "
          f"{len(test):,} held out")
    print("| learner | Qini (95% interval) | uplift@30% (95% interval) | random | beats random | fit s | sklift Qini |")
    print("|---|---|---|---|---|---|---|")
    for name, entry in scores.items():
        check = ranking_check(entry["score"], t[test], y[test], name, SEED)
        at = check.top.set_index("share").loc[0.3]
        print(f"| {name} | {check.qini:.4f} ({check.qini_low:.4f}..{check.qini_high:.4f}) | "
              f"{at['uplift']:.4f} ({at['uplift_low']:.4f}..{at['uplift_high']:.4f}) | {at['random']:.4f} | "
              f"{'yes' if check.better_than_random else 'no'} | {entry['seconds']:.2f} | "
              f"{entry.get('sklift_qini', float('nan')):.4f} |")

    sample_timing()


def sample_timing() -> None:
    """Measurement, features and an uplift fit on data/sample, as a page would run them."""
    from toolkit.opportunities.experiments import contact_outcomes, measure_campaigns
    from toolkit.opportunities.uplift import UpliftModel, customer_features
    from toolkit.pipeline import load

    tables = load(ROOT / "data" / "sample").tables
    started = time.perf_counter()
    outcomes = contact_outcomes(tables["contacts"], tables["campaigns"], tables["orders"])
    measure_campaigns(outcomes, tables["campaigns"], 0.58)
    measured = time.perf_counter()
    features = customer_features(tables["contacts"], tables["orders"], events=tables["events"])
    model = UpliftModel().fit(features, (outcomes["group"] == "treatment").to_numpy(float), outcomes["converted"])
    model.predict(features)
    done = time.perf_counter()
    print(f"\ndata/sample ({len(outcomes):,} contacts, {tables['campaigns']['campaign_id'].nunique()} campaigns): "
          f"measurement {measured - started:.2f} s, features + uplift fit + scores {done - measured:.2f} s, "
          f"total {done - started:.2f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
