"""Install script in the ament_python convention: the ROS 2 package `sr_real` owns the Python package `sr_real`.

`colcon build` uses it to install the ROS package (resource marker, package.xml, launch and config files);
`pip install -e .[dev]` uses it too, so the ROS-free core works without ROS.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "sr_real"
# training/ and export/ stay at the repository root (the ROS package layout) but install inside the `sr_real`
# namespace, so that they cannot clash with a user's own `training` or `export` module.
SUBSYSTEMS = {f"{PACKAGE}.training": "training", f"{PACKAGE}.export": "export"}

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Spatial reasoning for robots with a dual-path (LOR/DTR) vision-language model trained with RL",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["sr_real", "sr_real.*", "sr_real_core", "sr_real_core.*"])
    + [name.replace(folder, package, 1) for package, folder in SUBSYSTEMS.items()
       for name in find_packages(include=[folder, f"{folder}.*"])],
    package_dir=SUBSYSTEMS,
    package_data={PACKAGE: ["fastdds_interop.xml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    install_requires=["setuptools", "numpy", "opencv-python-headless", "pyyaml", "pillow", "tqdm", "regex"],
    extras_require={"dev": ["pytest", "hypothesis"]},
    zip_safe=True,
    entry_points={"console_scripts": ["sr-real = sr_real.cli:main",
                                      "spatial_query_node = sr_real.spatial_query_node:main"]},
)
