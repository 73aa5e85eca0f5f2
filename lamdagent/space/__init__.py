"""Objects, actions and the action space."""

from lamdagent.space.objects import DatasetObject, ModelObject, fingerprint
from lamdagent.space.space import Action, ActionSpace

__all__ = ["Action", "ActionSpace", "DatasetObject", "ModelObject", "fingerprint"]
