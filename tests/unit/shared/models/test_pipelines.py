"""The preprocessing pipelines' one process-wide setting: a missing pandas is remembered."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_a_missing_pandas_is_answered_at_once_and_scikit_learn_and_river_still_work() -> None:
    """scikit-learn tries ``import pandas`` on every transform; without pandas each attempt
    searched all of sys.path again (15% of the predictor's CPU on mixed events)."""
    code = textwrap.dedent(
        """
        import importlib.util, sys, numpy as np
        if importlib.util.find_spec("pandas") is not None:
            print("pandas installed"); raise SystemExit(0)
        from shared.models.pipelines import remember_pandas_is_absent
        from shared.models.algorithms import algorithm, fit
        from shared.core.schema import FeatureSpec, Schema
        remember_pandas_is_absent(); remember_pandas_is_absent()
        finders = [f for f in sys.meta_path if type(f).__name__ == "_Absent"]
        assert len(finders) == 1, finders
        import traceback
        try:
            import pandas
        except ModuleNotFoundError as exc:
            assert exc.name == "pandas"
            where = [f.name for f in traceback.extract_tb(exc.__traceback__)]
            assert "find_spec" in where, where  # answered by the finder, not by a search
        assert "pandas" not in sys.modules
        # who asks importlib (River does, at import) is told "not installed", not an error
        assert importlib.util.find_spec("pandas") is None
        import river.linear_model
        schema = Schema([FeatureSpec("x", "numeric"), FeatureSpec("c", "categorical")])
        X = schema.matrix([[1.0, "a"], [None, None], [2.0, "b"], [0.5, "a"]] * 10)
        model = fit(algorithm("logistic"), "classification", {}, X, [0, 1, 1, 0] * 10, schema)
        print(model.predict(schema.matrix([[None, "new"]])).tolist())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("[0]", "[1]", "pandas installed"), done.stdout
