"""Objects, actions and the action space."""

from lamdagent.space.objects import (
    DatasetObject,
    ModelObject,
    PreferenceDatasetObject,
    fingerprint,
)
from lamdagent.space.space import Action, ActionSpace

__all__ = ["Action", "ActionSpace", "DatasetObject", "ModelObject", "PreferenceDatasetObject", "fingerprint"]
