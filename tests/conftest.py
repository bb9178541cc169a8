pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.archive",
    "tests.fixtures.miner",
    "tests.fixtures.previous_validator",
]
