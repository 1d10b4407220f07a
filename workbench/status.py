"""`cascade status`: which lake, profile, PostgreSQL and sites are active (never a secret)."""

from __future__ import annotations

from workbench.settings import Settings, get_settings


def status_lines(settings: Settings | None = None) -> list[str]:
    settings = settings or get_settings()
    lines = [f"profile:    {settings.profile.value}"]
    home = settings.home
    if not home.is_dir():
        lines.append(f"lake:       {home} (does not exist; create it with `cascade init` or `make demo`)")
    else:
        lines.append(f"lake:       {home}")
        lines.append(f"warehouse:  {settings.warehouse_uri}")
        if (home / "catalog.db").is_file():
            from workbench.lake.store import open_lake

            refs = open_lake(settings).refs()
            branches = [r for r in refs if r.kind == "branch"]
            tags = [r for r in refs if r.kind == "tag"]
            heads = ", ".join(f"{r.name}@{r.commit_id[:8]}" for r in branches)
            lines.append(f"branches:   {heads}" + (f"; {len(tags)} tag(s)" if tags else ""))
        else:
            lines.append("branches:   (no catalog yet; `cascade init`)")
    lines += _postgres_lines(settings)
    lines += _sites_lines(settings)
    return lines


def _postgres_lines(settings: Settings) -> list[str]:
    from workbench.publish.postgres import status

    if settings.postgres_url is None and not settings.home.is_dir():
        return ["postgres:   embedded, not created yet (no lake)"]
    try:
        pg = status(settings)
    except Exception as exc:  # report, do not fail: status is for finding out what is wrong
        return [f"postgres:   unavailable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"]
    state = "running" if pg.running else "stopped"
    where = pg.url or (str(pg.data_dir) if pg.data_dir else "")
    return [f"postgres:   {pg.kind}, {state}" + (f", {where}" if where else "")]


def _sites_lines(settings: Settings) -> list[str]:
    from workbench.ingest.sites import default_sites_path, load_sites

    path = default_sites_path(settings)
    if not path.is_file():
        return [f"sites:      none configured ({path} does not exist): ingest uses the built-in demo server"]
    try:
        sites = load_sites(path)
    except Exception as exc:
        return [f"sites:      {path} is invalid: {exc}"]
    names = ", ".join(s.site_id for s in sites)
    return [f"sites:      {len(sites)} from {path}" + (f" ({names})" if names else "")]
