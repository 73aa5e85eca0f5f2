"""Study configuration: the schema, loading with overrides, and validation before any compute."""

from lamdagent.config.loading import DEFAULT_STUDY, flat_params, load_config, redacted, study_names, to_dict
from lamdagent.config.schema import study_config
from lamdagent.config.validation import validate

__all__ = ["DEFAULT_STUDY", "flat_params", "load_config", "redacted", "study_config", "study_names", "to_dict", "validate"]
