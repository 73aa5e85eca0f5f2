"""A study resolved from its config: tasks, training datasets, action types, base model."""

from __future__ import annotations

from pathlib import Path

from lamdagent.actions import ACTION_TYPES, ActionType
from lamdagent.evaluation.tasks import Task, load_task
from lamdagent.space import ActionSpace, ConversationDatasetObject, DatasetObject, MixtureDatasetObject, PreferenceDatasetObject


class Study:
    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name
        self.train_seed = cfg.seed if cfg.train_seed is None else cfg.train_seed  # the search's training randomness
        self.tasks: list[Task] = [load_task(name) for name in cfg.tasks]
        self.task_names = [t.name for t in self.tasks]
        self.ood_tasks: list[Task] = [load_task(name) for name in cfg.ood_tasks]
        names = list(cfg.datasets or [*self.task_names, "all"])
        self.candidates = [self._dataset(name) for name in names if name != "all"]
        self.all_data = self._union(self.candidates)
        self.datasets = [self.all_data if name == "all" else next(d for d in self.candidates if d.name == name) for name in names]
        names = cfg.preference_datasets or ([*self.task_names, "all"] if "dpo" in cfg.actions else [])
        self.preference_datasets = [self._preferences(name) for name in names]
        self.action_types: list[ActionType] = [ACTION_TYPES[name](getattr(cfg, name)) for name in cfg.actions]
        self.registered_model = cfg.registered_model or f"lamdagent-{cfg.name}"

    def _dataset(self, name: str):
        """A candidate training dataset: a target task's train split, any other task's (training data
        that is not a target, e.g. noisy or off-target data), or conversations from `training_data`."""
        if name in self.cfg.training_data:
            data = self.cfg.training_data[name]
            return ConversationDatasetObject(name, data.source, data.size, data.subset, self.train_seed)
        task = next((t for t in self.tasks if t.name == Path(name).stem), None) or load_task(name)
        return DatasetObject(task.name, [task], self.cfg.data.train_sizes.get(name, self.cfg.data.train_size), self.train_seed)

    def _union(self, candidates: list) -> DatasetObject | MixtureDatasetObject:
        """`all`: every candidate dataset of the study together (the paper's fully fine-tuned data)."""
        if all(isinstance(d, DatasetObject) and d.size == self.cfg.data.train_size for d in candidates):
            tasks = [task for d in candidates for task in d.tasks] or self.tasks
            return DatasetObject("all", tasks, self.cfg.data.train_size, self.train_seed)
        return MixtureDatasetObject("all", candidates, self.train_seed)

    def evaluation_keys(self) -> dict[str, str]:
        """Task name -> what identifies a model's validation score on it: the task's definition and
        the study's settings that change the score (validation size, seed, chat template, backend).
        A reused model whose recorded keys differ is evaluated again (Runner.produce)."""
        cfg = self.cfg
        settings = f"val={cfg.data.val_size};seed={cfg.seed};chat={cfg.chat_template};backend={cfg.evaluation.backend}"
        return {task.name: f"{task.definition_key()};{settings}" for task in self.tasks}

    def connect_judge(self) -> None:
        """Set the process-wide LLM judge when a task needs one (checked: key and endpoint)."""
        if any(t.spec.metric == "mt_bench_judge" for t in [*self.tasks, *self.ood_tasks]):
            from lamdagent.evaluation.judge import Judge, set_judge

            judge = self.cfg.judge
            if judge.backend == "local":
                from lamdagent.agent.local_llm import LocalChatModel

                chat = LocalChatModel(seed=self.cfg.seed)
            else:
                from lamdagent.agent.llm import openai_chat

                chat = openai_chat(judge.model, judge.base_url, judge.api_key_env, "the judge (judge.model)")
            set_judge(Judge(chat, judge.max_retries))

    def _preferences(self, name: str) -> PreferenceDatasetObject:
        size = self.cfg.data.train_size
        if name.startswith(("json:", "hf:")):
            return PreferenceDatasetObject(Path(name.split(":", 1)[1]).stem, [], size, self.train_seed, source=name)
        tasks = self.tasks if name == "all" else [t for t in self.tasks if t.name == Path(name).stem]
        return PreferenceDatasetObject(f"{name}_prefs", tasks, size, self.train_seed)

    def space(self, models, done=frozenset(), blocked=frozenset(), copies=None) -> ActionSpace:
        """The action space over `models` and the study's datasets, trained with the search's seed;
        `done`, `blocked` and `copies` as ActionSpace takes them."""
        return ActionSpace(self.action_types, models, self.datasets, self.train_seed, done, self.preference_datasets, blocked, copies)

    def decision_space(self, journal) -> ActionSpace:
        """The space a policy chooses from at the journal's next decision: over its models, without
        the actions already computed (with `repeat_actions`, without those still running only)."""
        excluded = {e.fingerprint for e in journal.pending()} if self.cfg.repeat_actions else journal.done()
        return self.space(journal.models(), excluded, journal.blocked(), journal.copies())

    def find_action(self, models, action_type: str, names: dict[str, str], fingerprint: str, settings: dict | None = None):
        """The action over `models` that made the model of `fingerprint` (a step of this study's search, or an
        initial model, which is trained with the study's seed), with a trial's `settings`; None if the study no
        longer gives it."""
        spaces = [self.space(models)]
        if self.train_seed != self.cfg.seed:
            spaces.append(ActionSpace(self.action_types, models, [self.specialist_dataset(t) for t in self.tasks] + self.datasets,
                                      self.cfg.seed, frozenset(), self.preference_datasets))
        for space in spaces:
            action = space.find(action_type, names)
            action = action and action.with_settings(settings or {})
            if action is not None and action.fingerprint == fingerprint:
                return action
        return None

    def dataset(self, name: str) -> DatasetObject:
        return next(d for d in self.datasets if d.name == name)

    def specialist_dataset(self, task: Task) -> DatasetObject:
        return DatasetObject(task.name, [task], self.cfg.data.train_size, self.cfg.seed)
