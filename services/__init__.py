"""polyhead's services; each subpackage is one deployable service."""
