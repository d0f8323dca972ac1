# Copyright: webinfra maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup agent (webinfra-backup): sources, repository, rebuilds, restores, archive."""
