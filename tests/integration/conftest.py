from tests.stack import make_stack

__all__ = ["make_stack"]
