"""`neurocompile doctor`: run the demo graph through every backend and report each one's
environment and status (a real round trip, the Lava worker included)."""

from __future__ import annotations

import click

from neurocompile.cli.common import console, emit_json, report_options, table, verbose


@click.command("doctor")
@click.option("--target", "targets", multiple=True,
              help="Check only this target (repeatable; default: all).")
@report_options
def doctor_cmd(targets: tuple[str, ...], json_out: str | None) -> None:
    """Check every backend: compile and run the demo graph, compare with the reference.

    Exits with status 1 when a backend whose requirements are installed fails or differs
    (a missing optional backend is reported, not an error).
    """
    from neurocompile.doctor import check_all
    from neurocompile.targets import target_class

    for name in targets:
        target_class(name)  # an unknown name is a user error, before any run
    reports = check_all(list(targets) or None)
    cols = ["target", "status", "environment"] + (["s", "detail"] if verbose() else [])
    t = table("backends (demo graph round trip vs the reference; details: -v)", cols, ("s",))
    for r in reports:
        cells = [r["target"], r["status"],
                 r["environment"] or ("-" if verbose() else r["detail"])]
        if verbose():
            cells += ["" if r["wall_s"] is None else f"{r['wall_s']:.2f}", r["detail"]]
        t.add_row(*cells)
    console.print(t)
    emit_json(json_out, {"targets": reports})
    bad = [r["target"] for r in reports if r["status"] in ("failed", "differs")]
    if bad:
        click.echo(f"error: backends not working: {', '.join(bad)} (details: doctor -v)",
                   err=True)
        raise SystemExit(1)
