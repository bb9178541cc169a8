pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.archive",
    "tests.fixtures.wb2_store",
    "tests.fixtures.miner",
    "tests.fixtures.aurora",
    "tests.fixtures.previous_validator",
]
