"""What the command-line tools check on the machine before they start Spark."""

import os
import shutil
import subprocess


def require_java() -> None:
    """Spark needs Java 17 or 21: stop with a clear message when it is missing."""
    java = (
        shutil.which("java", path=os.path.join(os.environ["JAVA_HOME"], "bin"))
        if os.environ.get("JAVA_HOME")
        else shutil.which("java")
    )
    if java is None:
        raise SystemExit(
            "astro: Java was not found. Spark needs Java 17 or 21: install it (Debian/Ubuntu: "
            "`apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) or set JAVA_HOME."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    version = out.split('"')[1] if '"' in out else out
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major not in (17, 21):
        raise SystemExit(f"astro: Spark needs Java 17 or 21, found {version!r} at {java}; install 17 or 21.")
