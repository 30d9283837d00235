"""The error the contract kit raises."""


class ContractViolation(AssertionError):
    """A reader or writer broke a promise of the contract."""
