"""What the plugin adds to lm-eval: fairpriv's task folder next to the user's, and `fairpriv:` names for plain hf."""

import fairpriv  # noqa: F401
from fairpriv.plugin import with_fairpriv_tasks
from fairpriv.tasks import TASKS_DIR

from conftest import TEST_TASKS


def test_with_fairpriv_tasks_keeps_user_paths_and_adds_ours_once():
    assert with_fairpriv_tasks(None) == [TASKS_DIR]
    assert with_fairpriv_tasks("my/tasks") == ["my/tasks", TASKS_DIR]
    assert with_fairpriv_tasks(["a", str(TASKS_DIR)]) == ["a", str(TASKS_DIR)]


def test_task_manager_sees_user_and_fairpriv_tasks_keyword_and_positional():
    from lm_eval.tasks import TaskManager

    for tm in (TaskManager(include_path=str(TEST_TASKS), include_defaults=False),
               TaskManager(None, str(TEST_TASKS), False)):
        assert {"fairpriv_test_toy", "fairpriv_sanity"} <= set(tm.all_tasks)
        assert "mmlu" not in tm.all_tasks  # include_defaults=False is still honoured


def test_hflm_args_resolve_only_fairpriv_names(monkeypatch):
    from fairpriv.plugin import hflm_args

    monkeypatch.setattr("fairpriv.plugin.resolve", lambda ref: ref.replace("fairpriv:", "/cache/") if isinstance(ref, str) else ref)
    args, kwargs = hflm_args(("fairpriv:m",), {"tokenizer": "fairpriv:t", "dtype": "fairpriv:not-a-path-key"})
    assert args == ("/cache/m",) and kwargs == {"tokenizer": "/cache/t", "dtype": "fairpriv:not-a-path-key"}
    assert hflm_args((), {"pretrained": "gpt2"}) == ((), {"pretrained": "gpt2"})


def test_hflm_and_task_manager_are_wrapped_once():
    import lm_eval.models.huggingface as hf
    from lm_eval.tasks import TaskManager

    from fairpriv import plugin

    plugin.resolve_asset_names(hf)  # a second call changes nothing
    assert hf.HFLM.__init__._fairpriv and not getattr(hf.HFLM.__init__.__wrapped__, "_fairpriv", False)
    assert TaskManager.__init__._fairpriv and not getattr(TaskManager.__init__.__wrapped__, "_fairpriv", False)
