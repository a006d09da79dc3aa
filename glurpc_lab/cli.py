"""The ``glurpc-lab`` command line: forecast an export, run the demo, start JupyterLab, train."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from glurpc_lab import __version__
from glurpc_lab.ingest.units import to_display_units
from glurpc_lab.report.figures import format_glucose

log = logging.getLogger("glurpc_lab")


def _make_client(args: argparse.Namespace):
    from glurpc_lab.client import LocalClient
    from glurpc_lab.engine import Engine

    engine = Engine(
        args.model,
        n_samples=args.samples,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    return LocalClient(engine)


def _format_next_hour(series, forecast, units: str) -> list[str]:
    """Return printable lines for the window that forecasts past the last reading."""
    if forecast.n_windows == 0 or int(forecast.input_end[-1]) != len(series) - 1:
        return ["  no forecast past the last reading: the last gap-free segment is shorter than 8 hours"]

    def value(mgdl) -> str:
        return format_glucose(float(to_display_units(mgdl, units)), units)

    last_time = np.datetime_as_string(series.time[-1], unit="m").replace("T", " ")
    lines = [
        f"  last reading {last_time}: {value(series.glucose[-1])} {units}",
        f"  time              median   80% interval ({units})",
    ]
    low, median, high = (forecast.quantile(q)[-1] for q in (0.1, 0.5, 0.9))
    for step, when in enumerate(forecast.forecast_times(-1)):
        stamp = np.datetime_as_string(when, unit="m").replace("T", " ")
        lines.append(f"  {stamp}  {value(median[step]):>6}   {value(low[step]):>4} - {value(high[step])}")
    return lines


def _write_json(path: str, info, forecasts, units: str) -> None:
    """Write the next-hour forecast of every series as JSON, glucose in ``units``."""
    payload = {
        "handle": info.handle,
        "units": units,
        "series": [
            {
                "subject": forecast.subject,
                "times": [str(t) for t in forecast.forecast_times(-1)],
                "levels": forecast.levels.tolist(),
                "quantiles": to_display_units(forecast.quantiles[-1], units).tolist(),
                "model_id": forecast.model_id,
                "seed": forecast.seed,
            }
            for forecast in forecasts
            if forecast.n_windows
        ],
    }
    Path(path).write_text(json.dumps(payload, indent=2))


def _forecast_file(args: argparse.Namespace, path: Path) -> int:
    from glurpc_lab.report.html import write_report

    client = _make_client(args)
    info = client.process(path.read_bytes())
    series_list = [client.series(info.handle, i) for i in range(len(info.series))]
    windows = "all" if args.all_windows else "latest"
    forecasts = [client.forecast(info.handle, i, windows=windows) for i in range(len(info.series))]

    # Files first, so a reader that closes the pipe early (| head) still gets them.
    if args.json:
        _write_json(args.json, info, forecasts, args.units)
    if args.html:
        report = Path(write_report(args.html, info, series_list, forecasts, units=args.units)).resolve()

    print(f"{info.source_format} export, {len(info.series)} series, handle {info.handle}")
    for summary, series, forecast in zip(info.series, series_list, forecasts):
        print(f"series {summary.subject}: {summary.points} grid points, {summary.windows} windows")
        for message in summary.quality.get("messages", []):
            print(f"  quality: {message}")
        for line in _format_next_hour(series, forecast, args.units):
            print(line)

    if args.json:
        print(f"forecast JSON written to {args.json}")
    if args.html:
        print(f"report written to {report}")
    return 0


def _cmd_forecast(args: argparse.Namespace) -> int:
    path = Path(args.export)
    if not path.is_file():
        print(f"error: {path} does not exist or is not a file", file=sys.stderr)
        return 2
    return _forecast_file(args, path)


def _cmd_demo(args: argparse.Namespace) -> int:
    from glurpc_lab.demo_data import DemoDataError, fetch_demo_export

    try:
        export = fetch_demo_export(args.export)
    except DemoDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    print(f"demo export: {export} (real Dexcom Clarity export from iglu-python 0.4.3, GPL-2)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    args.html = str(out_dir / "report.html")
    args.json = str(out_dir / "forecast.json")
    return _forecast_file(args, export)


def _run_lab(lab_args: list[str]) -> int:
    """Replace this process with JupyterLab from the same environment."""
    # sys.executable finds the environment's JupyterLab even when its bin/ is not on PATH.
    command = [sys.executable, "-m", "jupyterlab", *lab_args]
    if os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")
    os.execv(command[0], command)
    return 0  # not reached


def _run_research_command(name: str, command_args: list[str]) -> int:
    """Run ``glurpc-lab train``, ``calibrate`` or ``evaluate``; a data or weights problem prints one line."""
    from importlib import import_module

    from glurpc_lab.model import WeightsError

    command = import_module(f"glurpc_lab.training.{name}")
    try:
        return int(command.main(command_args) or 0)
    except (FileNotFoundError, ValueError, WeightsError) as error:
        print(f"glurpc-lab {name}: error: {error}", file=sys.stderr)
        return 2


def _unit_name(text: str) -> str:
    """Return the standard spelling of a glucose unit typed in any case (``mmol/l`` gives ``mmol/L``)."""
    return {"mg/dl": "mg/dL", "mmol/l": "mmol/L"}.get(text.lower(), text)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``glurpc-lab`` command."""
    parser = argparse.ArgumentParser(
        prog="glurpc-lab",
        description="Gluformer glucose forecasts from CGM exports. Research use only, not a medical device.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--version", action="version", version=f"glurpc-lab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_engine_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--model", default=None,
                         help="weights: 'bundled' (default), a local weights file, or hf:OWNER/REPO/FILE[@REVISION]")
        sub.add_argument("--samples", type=int, default=10, help="MC-dropout samples per window (default 10)")
        sub.add_argument("--seed", type=int, default=0, help="seed of the MC-dropout sampling (default 0)")
        sub.add_argument("--units", type=_unit_name, choices=("mg/dL", "mmol/L"), default="mg/dL",
                         help="glucose unit of the printed forecast and the report (default mg/dL)")
        sub.add_argument("--all-windows", action="store_true",
                         help="also forecast every earlier window (backtests) and cache them; slower")
        sub.add_argument("--cache-dir", default=None, help="forecast cache folder (default ~/.cache/glurpc-lab/store)")

    forecast = commands.add_parser("forecast", help="forecast the hour after the last reading of an export")
    forecast.add_argument("export", help="CGM export: Dexcom Clarity CSV/XLSX, LibreView CSV, Nightscout CSV/JSON, "
                          "cgm-format unified CSV, or an id,time,gl research table")
    forecast.add_argument("--html", help="also write a standalone HTML report to this path")
    forecast.add_argument("--json", help="also write the next-hour forecast as JSON to this path")
    add_engine_options(forecast)
    forecast.set_defaults(handler=_cmd_forecast)

    demo = commands.add_parser("demo", help="fetch a real Dexcom export from PyPI, forecast it, write a report")
    demo.add_argument("--out", default="out/demo", help="folder for report.html and forecast.json (default out/demo)")
    demo.add_argument("--export", default="dexcom_eur_01.xlsx", help="which iglu-python demo export to use")
    add_engine_options(demo)
    demo.set_defaults(handler=_cmd_demo)

    # 'lab', 'train', 'calibrate' and 'evaluate' pass every later argument on unparsed; main() routes them before argparse.
    commands.add_parser("lab", help="start JupyterLab with the glurpc-lab server extension; "
                        "later arguments go to 'jupyter lab'")

    commands.add_parser("train", help="train a Gluformer on the GlucoBench data sets; "
                        "'glurpc-lab train --help' lists its options")
    commands.add_parser("calibrate", help="fit a trained model's interval calibration on validation windows; "
                        "'glurpc-lab calibrate --help' lists its options")
    commands.add_parser("evaluate", help="score a model and baselines under the GlucoBench protocol; "
                        "'glurpc-lab evaluate --help' lists its options")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lab":
        return _run_lab(argv[1:])
    if argv and argv[0] in ("train", "calibrate", "evaluate"):
        return _run_research_command(argv[0], argv[1:])

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # cgm-format warns about layout details that ingestion already reports in the quality messages.
        logging.getLogger("cgm_format").setLevel(logging.ERROR)

    from glurpc_lab.engine.errors import ModelUnavailableError
    from glurpc_lab.ingest import IngestError
    from glurpc_lab.model import WeightsError

    try:
        return args.handler(args)
    except (IngestError, ModelUnavailableError, WeightsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader (e.g. head) closed stdout early; that is not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
