"""Objects, actions and the action space."""

from lamdagent.space.objects import (
    TRAINING_DATA,
    ConversationDatasetObject,
    DatasetObject,
    MixtureDatasetObject,
    ModelObject,
    PreferenceDatasetObject,
    fingerprint,
)
from lamdagent.space.space import Action, ActionSpace, with_defaults

__all__ = ["Action", "ActionSpace", "ConversationDatasetObject", "DatasetObject", "MixtureDatasetObject", "ModelObject", "PreferenceDatasetObject",
           "TRAINING_DATA", "fingerprint", "with_defaults"]
