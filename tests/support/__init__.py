"""Helpers the test modules share (configs, histories, worlds): plain modules, not tests, so no test
module imports another."""
