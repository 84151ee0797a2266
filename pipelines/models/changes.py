"""Key models (``-- incremental: key``, the staging tables): finding which of their rows
changed since the last build, from the raw rows loaded or merged since (``_dlt_load_id``), and
applying only those."""

from __future__ import annotations

import logging

from pipelines.models.execution import BuilderBase, Outcome
from pipelines.models.rules import VERSION, literal
from pipelines.models.runner import SqlFile

log = logging.getLogger("voipstudio.models")

LOAD_ID = "_dlt_load_id"


class KeyModels(BuilderBase):
    """The builder's steps for key models."""

    # -- key models ------------------------------------------------------------------------

    def full_watermarks(self, model: SqlFile) -> None:
        """The watermarks after a full build of a key model: the newest load of each account."""
        for source in sorted(model.sources):
            for key in [k for k in self.state.watermarks if k[0] == source]:
                del self.state.watermarks[key]
            if LOAD_ID not in self.columns.get(source, []):
                continue
            rows = self.run(
                f"select account, max({LOAD_ID}) from {self.table(source)} group by account",
                model.name,
            )
            for account, load_id in rows:
                if load_id is not None:
                    self.state.watermarks[(source, str(account))] = str(load_id)

    def candidates(self, source: str) -> str:
        """A condition on a raw table's rows: loaded or merged since the last build."""
        marks = {a: w for (s, a), w in self.read_watermarks.items() if s == source}
        if not marks:
            return "true"
        lowest = min(marks.values())
        # Below the lowest watermark nothing is new (storage blocks of older loads are skipped);
        # above it, each account from its own.
        per_account = " and ".join(
            f"not (account = {literal(account)} and {LOAD_ID} <= {literal(mark)})"
            for account, mark in sorted(marks.items())
        )
        return f"{LOAD_ID} > {literal(lowest)} and {per_account}"

    def update_by_key(self, model: SqlFile) -> Outcome:
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        sources = sorted(model.sources)
        unmarked = [
            s for s in sources if s in spec.sources and LOAD_ID not in self.columns.get(s, [])
        ]
        if unmarked:
            # A dataset loaded before the sync stamped load ids on CDRs: the next sync adds the
            # column (new and merged rows get it), and the builds after it are incremental.
            log.info(
                "model %s: %s has no %s column (loaded by an earlier version): comparing every "
                "row; the next `voipstudio sync` adds it",
                name,
                ", ".join(unmarked),
                LOAD_ID,
            )
        compare_all = bool(unmarked) or any(s not in spec.sources for s in sources)
        change = self.compare_by_key(model, compare_all)
        if not compare_all and self.lost_rows(model, change):
            log.warning(
                "model %s: rows of %s disappeared since the last build (a full refresh, or rows "
                "deleted by hand): comparing every row",
                name,
                ", ".join(sources),
            )
            change = self.compare_by_key(model, True)
        if change is None:
            return Outcome("unchanged", None, changed_rows=0)
        changed = self.count(change, name)
        if not changed:
            return Outcome("unchanged", None, changed_rows=0)
        key = spec.columns
        on = " and ".join(f"c.{k} = {name}.{k}" for k in key)
        self.run(
            f"delete from {self.table(name)} where exists (select 1 from {change} as c "
            f"where c.{VERSION} = 'old' and {on})",
            name,
        )
        columns = ", ".join(self.columns[name])
        self.run(
            f"insert into {self.table(name)} ({columns}) select {columns} from {change} "
            f"where {VERSION} = 'new'",
            name,
        )
        return Outcome("incremental", change, changed_rows=changed)

    def compare_by_key(self, model: SqlFile, compare_all: bool) -> str | None:
        """The changed rows of a key model (a temporary table), with the watermarks updated."""
        spec = model.header.incremental
        assert spec is not None
        name = model.name
        key = spec.columns
        restricted: dict[str, str] = {}
        if compare_all:
            old = f"select * from {self.table(name)}"
            for source in sorted(model.sources):
                self.full_watermarks_of(source)
        else:
            selects = []
            for source in sorted(model.sources):
                mapped = ", ".join(
                    f"{column} as {k}" for column, k in zip(spec.sources[source], key, strict=True)
                )
                candidates = self.temp(
                    "candidates",
                    f"{name}_{source}",
                    name,
                    f"select {mapped}, {LOAD_ID} from {self.table(source)} "
                    f"where {self.candidates(source)}",
                )
                for account, load_id in self.run(
                    f"select account, max({LOAD_ID}) from {candidates} group by account",
                    name,
                ):
                    if load_id is not None:
                        mark = self.state.watermarks.get((source, str(account)))
                        if mark is None or str(load_id) > mark:
                            self.state.watermarks[(source, str(account))] = str(load_id)
                selects.append(f"select {', '.join(key)} from {candidates}")
                restricted[source] = (
                    f"select * from {self.table(source)} where {self.candidates(source)}"
                )
            keys = self.temp(
                "keys",
                name,
                name,
                "select distinct * from (" + " union all ".join(selects) + ") as k",
            )
            if not self.count(keys, name):
                return None
            if len(restricted) > 1:
                # A row of one table can be reached by another's change: read each table for
                # every key changed in any of them.
                for source in sorted(model.sources):
                    on = " and ".join(
                        f"k.{k} = t.{column}"
                        for column, k in zip(spec.sources[source], key, strict=True)
                    )
                    restricted[source] = (
                        f"select t.* from {self.table(source)} as t "
                        f"where exists (select 1 from {keys} as k where {on})"
                    )
            on = " and ".join(f"k.{k} = m.{k}" for k in key)
            old = (
                f"select m.* from {self.table(name)} as m "
                f"where exists (select 1 from {keys} as k where {on})"
            )
        query = self.compiled(model, sources=restricted, source_columns=True)
        new_table = self.temp("new", name, name, query)
        old_table = self.temp("old", name, name, old)
        # Rows compared column by column, by key: a row that is back unchanged is no change.
        on = " and ".join(f"n.{k} = o.{k}" for k in key)
        differs = " or ".join(
            [
                f"o.{key[0]} is null",
                f"n.{key[0]} is null",
                *(f"n.{c} is distinct from o.{c}" for c in self.columns[name] if c not in key),
            ]
        )
        keys = ", ".join(f"coalesce(n.{k}, o.{k}) as {k}" for k in key)
        changed = self.temp(
            "changed",
            name,
            name,
            f"select {keys} from {new_table} as n full join {old_table} as o on {on} "
            f"where {differs}",
        )
        match = " and ".join(f"c.{k} = t.{k}" for k in key)
        return self.temp(
            "changes",
            name,
            name,
            f"select 'old' as {VERSION}, t.* from {old_table} as t "
            f"where exists (select 1 from {changed} as c where {match}) union all "
            f"select 'new' as {VERSION}, t.* from {new_table} as t "
            f"where exists (select 1 from {changed} as c where {match})",
        )

    def full_watermarks_of(self, source: str) -> None:
        if LOAD_ID not in self.columns.get(source, []):
            return
        for account, load_id in self.run(
            f"select account, max({LOAD_ID}) from {self.table(source)} group by account",
            source,
        ):
            if load_id is not None:
                self.state.watermarks[(source, str(account))] = str(load_id)

    def lost_rows(self, model: SqlFile, change: str | None) -> bool:
        """Whether the key model would hold rows its raw tables no longer have: per account,
        its rows after the change differ in number from what its query returns."""
        name = model.name
        text = self.compiled(model, source_columns=True)
        expected = dict(
            self.run(f"select account, count(*) from ({text}) as q group by account", name)
        )
        stored = dict(
            self.run(f"select account, count(*) from {self.table(name)} group by account", name)
        )
        if change is not None:
            for account, delta in self.run(
                f"select account, sum(case when {VERSION} = 'new' then 1 else -1 end) "
                f"from {change} group by account",
                name,
            ):
                stored[account] = stored.get(account, 0) + int(delta)
        return {a: int(n) for a, n in expected.items() if n} != {
            a: int(n) for a, n in stored.items() if n
        }
