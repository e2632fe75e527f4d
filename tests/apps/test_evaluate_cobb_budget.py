"""r2mfnet-evaluate-cobb's options for the error budget: bad combinations are one-line errors."""
from __future__ import annotations

import pytest

from r2mfnet.apps import evaluate_cobb
from r2mfnet.config_dir import compose
from r2mfnet.errors import ConfigError


@pytest.mark.parametrize("overrides, message", [
    (["budget=true"], "budget=true needs dataset=spineweb16 and checkpoint=PATH"),
    (["split=validation"], "split must be train, val, test or all, got 'validation'"),
])
def test_bad_budget_options_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        evaluate_cobb.run(compose("evaluate_cobb", overrides))
