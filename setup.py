"""Package list for setuptools (the rest of the metadata is in pyproject.toml).

Every package under lib/ is found by walking it; plugins/ and zipapp/ are shipped
as cni._dist.plugins and cni._dist.zipapp (see package-dir in pyproject.toml).
"""
from setuptools import find_packages, setup

setup(packages=find_packages("lib") + ["cni._dist.plugins", "cni._dist.zipapp"])
