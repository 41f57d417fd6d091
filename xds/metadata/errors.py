"""Registry errors as ebRS 3.0 reports them (ITI TF-3 4.2.4.1): one RegistryError per problem,
carried through the code as values and raised together as :class:`XdsError`.

Which code a problem raises is decided in one place, :mod:`xds.metadata.rules`; this module only
holds the shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"
SEVERITIES = (ERROR, WARNING)


@dataclass(frozen=True)
class RegistryError:
    """One rs:RegistryError: ``code`` is the errorCode (e.g. ``XDSPatientIdDoesNotMatch``),
    ``context`` the codeContext (a human-readable explanation), ``location`` where the problem
    is (we use the id of the offending object)."""

    code: str
    context: str
    severity: str = ERROR
    location: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


class XdsError(Exception):
    """One or more RegistryErrors that end a transaction; the transaction handler turns them into
    a Failure RegistryResponse (or AdhocQueryResponse)."""

    def __init__(self, errors: RegistryError | Iterable[RegistryError]) -> None:
        self.errors: list[RegistryError] = [errors] if isinstance(errors, RegistryError) else list(errors)
        if not self.errors:
            raise ValueError("XdsError needs at least one RegistryError")
        super().__init__("; ".join(f"{e.code}: {e.context}" for e in self.errors))

    @property
    def code(self) -> str:
        """The code of the first error (what most callers and tests look at)."""
        return self.errors[0].code


def has_errors(errors: Iterable[RegistryError]) -> bool:
    """True when any entry has Error severity (warnings alone leave a response Success)."""
    return any(e.severity == ERROR for e in errors)
