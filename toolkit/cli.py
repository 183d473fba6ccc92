"""The ``journeycast`` command: one subcommand per step of the flow.

Each subcommand is a thin ``_cmd_<name>(args) -> int`` that calls the toolkit
and prints what an analyst needs. ``main`` is the one error boundary: errors
the user can act on (``JourneycastError``) are one line and exit code 2;
failures of the input or the machine (an unreadable file, a full disk, a
database error) are one line naming the problem and a log file with the
traceback, exit code 2; anything else is a bug: the same, exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import traceback
from pathlib import Path

from toolkit.errors import JourneycastError

#: Environment variable holding the secret for pseudonymised customer ids.
PSEUDONYM_KEY_VARIABLE = "JOURNEYCAST_PSEUDONYM_KEY"


def _cmd_sample(args: argparse.Namespace) -> int:
    from toolkit.sample import write_messy_shop, write_sample

    write = write_messy_shop if args.messy else write_sample
    paths = write(args.out, customers=args.customers, seed=args.seed)
    for name, path in paths.items():
        print(f"wrote {path}")
    return 0


#: Where ``validate`` writes the rejects unless told otherwise (relative to the current directory).
DEFAULT_REJECTS = Path("reports") / "validate" / "rejects.csv"


def _cmd_validate(args: argparse.Namespace) -> int:
    from toolkit.config import load_config
    from toolkit.ingest import RejectShareError, reject_share_error

    config = load_config(args.data_dir, args.config)
    rejects = _rejects_path(args.rejects, args.data_dir)
    check = _check_in_duckdb if args.engine == "duckdb" else _check_in_pandas
    summary, rejected, counts, by_reason, files = check(args, config, rejects.resolve())
    print(summary)
    print(f"wrote {rejected:,} reject lines to {rejects}")
    if counts["orders"]["rows_in"] and not counts["orders"]["accepted"]:
        print("journeycast validate: no usable orders remain", file=sys.stderr)
        return 1
    too_many = reject_share_error(counts, by_reason, files, config.max_reject_share)
    if too_many and not args.accept_rejects:
        raise RejectShareError(too_many)
    return 0


def _rejects_path(given: Path | None, data_path: Path) -> Path:
    """Where the rejects go: never inside the data directory.

    An explicit path inside it is refused; the default, when the command runs
    inside the data directory, moves to the system's temporary folder.
    """
    from toolkit.ingest import split_data_path

    folder = split_data_path(data_path)[0].resolve()
    path = given or DEFAULT_REJECTS
    if not path.resolve().is_relative_to(folder):
        return path
    if given is not None:
        raise JourneycastError(f"{given}: refusing to write into the data directory {folder}")
    outside = Path(tempfile.gettempdir()) / "journeycast-validate" / folder.name / DEFAULT_REJECTS.name
    print(f"{DEFAULT_REJECTS} would be inside the data directory {folder}; writing the rejects to {outside}")
    return outside


def _check_in_pandas(args: argparse.Namespace, config, rejects_path: Path) -> tuple:
    """Summary, reject lines written, counts, problems by reason and files of ``load_tables`` (any source)."""
    from toolkit.ingest import load_tables

    from toolkit.export import write_shareable_csv

    ingested = load_tables(args.data_dir, config)
    write_shareable_csv(ingested.rejects, rejects_path)
    return (ingested.format_summary(), len(ingested.rejects), ingested.counts, ingested.rejects_by_reason(),
            ingested.files)


def _check_in_duckdb(args: argparse.Namespace, config, rejects_path: Path) -> tuple:
    """The same, checked and counted inside DuckDB: CSV/Parquet sources too large for pandas."""
    from toolkit.warehouse import WarehouseLimits, check_in_duckdb

    found = check_in_duckdb(args.data_dir, config, rejects_path,
                            limits=WarehouseLimits(memory_limit=args.memory_limit))
    lines = []
    for name, count in found.counts.items():
        lines.append(f"{name:<7} {found.files[name]}: {count['rows_in']:,} rows in, "
                     f"{count['accepted']:,} accepted, {count['rejected']:,} rejected")
        reasons = found.rejects_by_reason[found.rejects_by_reason["table"] == name]
        lines += [f"          {row.problems:>8,}  {row.reason}" for row in reasons.itertuples()]
    rejected = int(found.rejects_by_reason["problems"].sum())
    return "\n".join(lines), rejected, found.counts, found.rejects_by_reason, found.files


def _cmd_forecast(args: argparse.Namespace) -> int:
    from toolkit import export, pipeline

    dataset = pipeline.load(args.data_dir, args.config, accept_rejects=args.accept_rejects)
    view = pipeline.journey(dataset)
    cash = pipeline.forecast_cash(dataset, horizon=args.horizon, **_execution(args))
    export.write_tables(args.out, pipeline.forecast_tables(cash, view))
    summary = pipeline.forecast_summary(dataset, cash)
    export.write_summary(args.out, summary)
    outlook = summary["cash"]
    print(f"{len(summary['series'])} series forecast {summary['horizon']} days ahead; "
          f"{sum(s['fallback'] for s in summary['series'])} on a fallback")
    if outlook["shortfall_probability"] is None:
        print(f"{outlook['measure']}: median {outlook['ending_p50']:,.0f} {summary['currency']} at the horizon; "
              "shortfall risk not assessed")
    else:
        print(f"P(balance < minimum) within the horizon: {outlook['shortfall_probability']:.1%}; "
              f"first likely breach: {outlook['first_breach_date'] or 'none'}; "
              f"runway: {outlook['runway_days']} days")
    for note in summary["notes"]:
        print(f"note ({note['level']}): {note['text']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_opportunities(args: argparse.Namespace) -> int:
    import os

    from toolkit import export, pipeline
    from toolkit.notes import notes_frame

    key = os.environ.get(PSEUDONYM_KEY_VARIABLE) if args.pseudonymise else None
    if args.pseudonymise and not key:
        raise JourneycastError(f"--pseudonymise needs a secret key in ${PSEUDONYM_KEY_VARIABLE}")
    dataset = pipeline.load(args.data_dir, args.config, accept_rejects=args.accept_rejects)
    found = pipeline.opportunities(dataset)
    shareable = {"repurchase_opportunities": found.repurchase, "upsell_offers": found.upsell,
                 "personal_offers": found.offers}
    tables = shareable | {"customer_scores": found.customers}
    if key:
        # the output folder is what gets shared: with --pseudonymise no file in it holds a raw id
        tables = {name: export.pseudonymise(frame, key) if "customer_id" in frame.columns else frame
                  for name, frame in tables.items()}
    export.write_tables(args.out, tables)
    for name in shareable:
        export.write_shareable_csv(tables[name], args.out / f"{name}.csv")
    check = found.upsell_check
    summary = {
        "as_of": found.as_of, "horizon_days": found.days, "customers_scored": len(found.customers),
        "repurchase_model": {"name": found.model_name, "params": found.model.params_},
        "upsell_check": {"auc": check.auc, "top_decile_lift": check.top_decile_lift,
                         "base_rate": check.base_rate, "customers": check.customers, "reason": check.reason},
        "personal_offers": len(found.offers),
        "notes": notes_frame([*dataset.notes, *found.notes]),
    }
    export.write_summary(args.out, summary)
    checked = (f"upsell model AUC {check.auc:.2f}, top-decile lift {check.top_decile_lift:.1f}x"
               if check.checked else f"upsell model: {check.reason}")
    print(f"{len(found.customers):,} customers scored as of {found.as_of:%Y-%m-%d} ({found.model_name}); {checked}")
    print(f"{len(found.offers):,} personal offers; what a campaign would add is planned by `journeycast campaigns`")
    for note in summary["notes"]:
        print(f"note ({note['level']}): {note['text']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_campaigns(args: argparse.Namespace) -> int:
    import json

    from toolkit import export, pipeline
    from toolkit.export import atomic_path, jsonable

    dataset = pipeline.load(args.data_dir, args.config, accept_rejects=args.accept_rejects)
    cash = found = None
    if len(dataset.tables.get("orders", ())):  # a campaign results export alone has no orders
        cash = pipeline.forecast_cash(dataset, **_execution(args))
        found = pipeline.opportunities(dataset)
    study = pipeline.campaign_study(dataset, cash, found, budget=args.budget, risk_limit=args.risk_limit)
    tables = pipeline.campaign_tables(study)
    export.write_tables(args.out, tables)
    for name, frame in tables.items():
        export.write_shareable_csv(frame, args.out / f"{name}.csv")
    summary = pipeline.campaign_summary(study, dataset.config.currency)
    with atomic_path(args.out / "plan.json") as partial:
        partial.write_text(json.dumps(jsonable(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if study.results is not None:
        for row in study.results.table.itertuples():
            print(f"{row.campaign_id} {row.variant}: {row.verdict}")
    check = study.uplift
    if check is not None:
        print(f"uplift model ({check.learner}): Qini {check.qini:.4f} [{check.qini_low:.4f}, {check.qini_high:.4f}], "
              f"{'better than' if check.better_than_random else 'not distinguishable from'} random targeting")
    print(summary["recommendation"])
    for note in summary["notes"]:
        print(f"note ({note['level']}): {note['text']}")
    print(f"wrote {args.out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from toolkit.reports import load_parameters_file, parse_parameter_value, run_report

    parameters = load_parameters_file(args.params_file) if args.params_file else {}
    parameters.update({name: parse_parameter_value(value) for name, value in args.parameter})
    if args.accept_rejects:
        parameters["accept_rejects"] = True
    run = run_report(args.data_dir, args.config, parameters, out_dir=args.out, notebooks=args.notebooks,
                     jobs=args.jobs)
    for nb in run.notebooks:
        line = f"{nb.status:<9} {nb.name} ({nb.duration_s:.1f} s)"
        print(line + (f": {nb.error}" if nb.error else ""))
        if nb.failure:
            print(f"          reproduce: {nb.failure['command']}")
    print(run.index)
    if run.status != "succeeded":
        print(f"the run failed, so {Path(args.out) / 'latest'} still points at the last complete run; "
              "the index lists what failed", file=sys.stderr)
    return 0 if run.status == "succeeded" else 1


def _setting(name: str, kind: type):
    """An argparse type for a value that overrides the setting ``name``: it obeys that setting's rule."""
    def parse(text: str):
        from toolkit.config import ConfigError, check_setting

        value = kind(text)  # a ValueError here: argparse says "invalid int value"
        try:
            check_setting(name, value, name)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{name}: invalid configuration: ")) from None
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _data_arguments(p: argparse.ArgumentParser) -> None:
    """The data directory and configuration file every analysis command reads, and the reject limit."""
    p.add_argument("data_dir", nargs="?", type=Path, default=Path("data/sample"),
                   help="directory with orders/events/costs and journeycast.yml, or the orders file itself "
                        "(CSV, text or Parquet; a journeycast.yml beside it is used)")
    p.add_argument("--config", type=Path, default=None,
                   help="configuration file (default: journeycast.yml in DATA_DIR, or beside the orders file)")
    p.add_argument("--accept-rejects", action="store_true",
                   help="go on when more rows are rejected than max_reject_share allows (default: refuse)")


def _backend_arguments(p: argparse.ArgumentParser) -> None:
    """Where the forecasts run."""
    p.add_argument("--backend", default="local", choices=("local", "serial", "dask"),
                   help="local: a process pool over all cores; dask: a Dask cluster (started "
                        "here unless --scheduler-address is given); serial: one by one")
    p.add_argument("--scheduler-address", default=None,
                   help="address of a running Dask scheduler, with --backend dask")


def _execution(args: argparse.Namespace) -> dict:
    options = {"backend": args.backend}
    if args.scheduler_address:
        options["scheduler_address"] = args.scheduler_address
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="journeycast",
        description="Customer-journey analytics and cash-flow forecasting.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="generate the deterministic sample shop data")
    p.add_argument("--out", type=Path, default=Path("data/sample"), help="output directory")
    p.add_argument("--customers", type=int, default=9000, help="people entering the journey")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--messy", action="store_true",
                   help="instead, the shop's last year as a raw order-line export: guests, cancellations, "
                        "European dates, a closed week, a partial last day, no events or costs")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("validate", help="check the data directory and write the rejected rows")
    _data_arguments(p)
    p.add_argument("--rejects", type=Path, default=None,
                   help=f"where to write the rejected rows (default {DEFAULT_REJECTS}; never inside DATA_DIR; "
                        "with --engine duckdb: Parquet unless the name ends in .csv)")
    p.add_argument("--engine", choices=("pandas", "duckdb"), default="pandas",
                   help="pandas: rows into memory (any source); duckdb: checked and counted inside "
                        "DuckDB, for CSV/Parquet sources of tens of millions of rows")
    p.add_argument("--memory-limit", default="1GB",
                   help="with --engine duckdb: DuckDB's memory limit; beyond it, it spills to .cache/warehouse/")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("forecast", help="forecast stage cash flows and the cash position")
    _data_arguments(p)
    p.add_argument("--horizon", type=_setting("horizon", int), default=None, help="periods to forecast (default: the config's)")
    _backend_arguments(p)
    p.add_argument("--out", type=Path, default=Path("reports/forecast"), help="output directory")
    p.set_defaults(func=_cmd_forecast)

    p = sub.add_parser("opportunities", help="score customers, rank re-purchase opportunities and offers")
    _data_arguments(p)
    p.add_argument("--out", type=Path, default=Path("reports/opportunities"), help="output directory")
    p.add_argument("--pseudonymise", action="store_true",
                   help=f"replace customer ids in every output file by keyed pseudonyms (key in ${PSEUDONYM_KEY_VARIABLE})")
    p.set_defaults(func=_cmd_opportunities)

    p = sub.add_parser("campaigns", help="measure past campaigns, check an uplift model, plan the next campaign")
    _data_arguments(p)
    p.add_argument("--out", type=Path, default=Path("reports/campaigns"), help="output directory")
    p.add_argument("--budget", type=_setting("budget", float), default=None,
                   help="most money the campaign may spend up front (default: the config's campaign.budget)")
    p.add_argument("--risk-limit", type=_setting("risk_limit", float), default=None,
                   help="largest acceptable P(balance < minimum_cash) (default: the config's risk_limit)")
    _backend_arguments(p)
    p.set_defaults(func=_cmd_campaigns)

    p = sub.add_parser("report", help="run the notebooks into an offline HTML report")
    _data_arguments(p)
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="notebook parameter; VALUE is read as YAML (42 is an int, null is None)")
    p.add_argument("--params-file", type=Path, default=None, help="YAML mapping of notebook parameters")
    p.add_argument("--out", type=Path, default=Path("reports"), help="where runs are published")
    p.add_argument("--notebooks", default=None, metavar="GLOB",
                   help="which notebooks to run (default: notebooks/NN_*.ipynb)")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="notebooks run at once, each in its own kernel (default: one per core, at most 2)")
    p.set_defaults(func=_cmd_report)

    return parser


#: Where the traceback of a failure goes, so the terminal shows one line.
LOG_DIR = Path(tempfile.gettempdir()) / "journeycast" / "logs"

#: Libraries whose errors are about the input or the machine (a database, a data file), not a bug.
_INPUT_LIBRARIES = ("sqlalchemy", "duckdb", "_duckdb", "sqlite3")


def _input_failure(exc: Exception) -> bool:
    """Whether ``exc`` comes from the input or the machine rather than from journeycast itself.

    Files and disks (``OSError``), text in an unknown or wrong encoding,
    an unknown time zone, memory, and database errors. Any other
    ``LookupError`` (a ``KeyError``) is a bug.
    """
    from zoneinfo import ZoneInfoNotFoundError

    return (isinstance(exc, (OSError, UnicodeError, MemoryError, ZoneInfoNotFoundError))
            or type(exc) is LookupError  # codecs: unknown encoding
            or type(exc).__module__.split(".")[0] in _INPUT_LIBRARIES)


def _log_traceback(command: str, exc: Exception) -> Path | None:
    """Write the traceback of ``exc`` to a new file in ``LOG_DIR``; None when even that fails (a full disk)."""
    path = LOG_DIR / f"{command}-{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        return None
    return path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``journeycast`` console script (see the module docstring for exit codes)."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except JourneycastError as exc:
        print(f"journeycast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the one boundary: no traceback reaches the terminal
        expected = _input_failure(exc)
        log = _log_traceback(args.command, exc)
        problem = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
        where = f"traceback in {log}" if log else "the traceback could not be written either"
        kind = "error" if expected else "internal error (a bug; please report it with the log)"
        print(f"journeycast {args.command}: {kind}: {type(exc).__name__}: {problem} ({where})", file=sys.stderr)
        return 2 if expected else 1


if __name__ == "__main__":
    sys.exit(main())
