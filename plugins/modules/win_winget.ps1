#!powershell

# Copyright: Cyclotron contributors
# Apache-2.0 (see pyproject.toml)

#AnsibleRequires -CSharpUtil Ansible.Basic
#Requires -Module Ansible.ModuleUtils.ArgvParser
#Requires -Module Ansible.ModuleUtils.CommandUtil

$spec = @{
    options = @{
        id = @{ type = "str"; required = $true }
        version = @{ type = "str" }
        state = @{ type = "str"; default = "present"; choices = "present", "absent", "latest" }
        scope = @{ type = "str"; choices = "user", "machine" }
        source = @{ type = "str"; default = "winget" }
        allow_downgrade = @{ type = "bool"; default = $false }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$id = $module.Params.id
$version = $module.Params.version
$state = $module.Params.state
$scope = $module.Params.scope
$source = $module.Params.source
$allowDowngrade = $module.Params.allow_downgrade

$module.Result.changed = $false
$module.Result.version_before = $null
$module.Result.version_after = $null
$module.Result.rc = 0
$module.Result.stdout = ""
$module.Result.stderr = ""

# Same patterns as cyclotron_py/safety.py; \z because $ also matches before a final newline.
if ($id -notmatch '^[A-Za-z0-9][A-Za-z0-9.+_-]{0,127}\z') {
    $module.FailJson("id '$id' is not a winget package id (letters, digits, '.', '+', '_', '-'; no leading '-')")
}
if ($version -and $version -notmatch '^[A-Za-z0-9][A-Za-z0-9.+:~_-]{0,63}\z') {
    $module.FailJson("version '$version' is not a plain version string")
}
if ($source -notmatch '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\z') {
    $module.FailJson("source '$source' is not a winget source name")
}
if ($version -and $state -eq "latest") {
    $module.FailJson("version '$version' cannot be combined with state=latest; use state=present to pin it")
}

$hint = "winget only works in the logged-in user's own session (winget-cli issue 256): run this task with " +
"become: true, become_method: runas and become_user set to that user (role variable " +
"cyclotron_winget_become_user), not as SYSTEM or in a plain WinRM session"
$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
if ($identity.IsSystem) {
    $module.FailJson("winget cannot run as SYSTEM ($($identity.Name)). $hint")
}
# A WinRM logon carries the NETWORK group (S-1-5-2); say so in any failure below.
$networkLogon = @($identity.Groups | Where-Object { $_.Value -eq "S-1-5-2" }).Count -gt 0
$failHint = if ($networkLogon) { " This is a network logon: $hint." } else { "" }

$winget = Get-Command -Name winget.exe -CommandType Application -ErrorAction SilentlyContinue |
    Select-Object -First 1 -ExpandProperty Path
if (-not $winget -and $env:LOCALAPPDATA) {
    # The App Execution Alias, which a non-interactive PATH may lack.
    $alias = Join-Path -Path $env:LOCALAPPDATA -ChildPath "Microsoft\WindowsApps\winget.exe"
    if (Test-Path -LiteralPath $alias) { $winget = $alias }
}
if (-not $winget) {
    $module.FailJson("winget.exe was found neither on PATH nor in %LOCALAPPDATA%\Microsoft\WindowsApps " +
        "for $($identity.Name): install App Installer (Microsoft Store), then note that $hint")
}

Function Invoke-Winget {
    param([string[]]$Arguments)
    # argv -> one command line with Windows quoting rules; never a string built from user data.
    $cmd = Argv-ToString -arguments (@($winget) + $Arguments)
    try {
        $res = Run-Command -command $cmd -output_encoding_override "utf-8"
    }
    catch {
        $module.Result.cmd = $cmd
        $module.FailJson("Could not start winget ($cmd): $($_.Exception.Message).$failHint", $_)
    }
    $res.cmd = $cmd
    return $res
}

Function Set-CommandResult {
    param($Res)
    foreach ($key in "cmd", "rc", "stdout", "stderr") { $module.Result.$key = $Res.$key }
}

Function Get-InstalledVersion {
    # winget export writes documented JSON (Sources[].Packages[].PackageIdentifier/Version);
    # the `winget list` table truncates columns and is localised.
    $out = Join-Path -Path ([IO.Path]::GetTempPath()) -ChildPath ("cyclotron-winget-{0}.json" -f [guid]::NewGuid())
    try {
        $res = Invoke-Winget -Arguments @("export", "--output", $out, "--include-versions", "--source", $source,
            "--accept-source-agreements", "--disable-interactivity")
        if (-not (Test-Path -LiteralPath $out)) {
            Set-CommandResult -Res $res
            $module.FailJson("winget export --source $source wrote no file (exit code $('0x{0:X8}' -f $res.rc)).$failHint")
        }
        try {
            $data = Get-Content -LiteralPath $out -Raw -Encoding UTF8 | ConvertFrom-Json
        }
        catch {
            Set-CommandResult -Res $res
            $module.FailJson("Could not read the file winget export wrote: $($_.Exception.Message)", $_)
        }
    }
    finally {
        Remove-Item -LiteralPath $out -Force -ErrorAction SilentlyContinue
    }
    foreach ($src in @($data.Sources)) {
        foreach ($pkg in @($src.Packages)) {
            if ($pkg.PackageIdentifier -eq $id) {
                if ($pkg.Version) { return [string]$pkg.Version }
                return "unknown"
            }
        }
    }
    return $null
}

$before = Get-InstalledVersion
$module.Result.version_before = $before
$module.Result.version_after = $before

$common = @("--id", $id, "--exact", "--source", $source, "--accept-source-agreements", "--disable-interactivity")
$scopeArgs = @()
if ($scope) { $scopeArgs = @("--scope", $scope) }
$install = @("install") + $common + @("--silent", "--accept-package-agreements") + $scopeArgs
$uninstall = @("uninstall") + $common + @("--silent") + $scopeArgs

$actions = [System.Collections.Generic.List[object]]@()
if ($state -eq "absent") {
    if ($null -ne $before) { $actions.Add($uninstall) }
}
elseif ($null -eq $before) {
    if ($version) { $actions.Add($install + @("--version", $version)) } else { $actions.Add($install) }
}
elseif ($version -and $before -ne $version) {
    # winget refuses to install over a newer version; replacing is the rollback path.
    if ($allowDowngrade) { $actions.Add($uninstall) }
    $actions.Add($install + @("--version", $version))
}
elseif ($state -eq "latest") {
    $actions.Add(@("upgrade") + $common + @("--silent", "--accept-package-agreements") + $scopeArgs)
}

if ($actions.Count -gt 0 -and $module.CheckMode) {
    # An upgrade may find nothing newer; check mode cannot tell without installing.
    $module.Result.changed = $actions[0][0] -ne "upgrade"
}
elseif ($actions.Count -gt 0) {
    $NoApplicableUpdate = -1978335189   # 0x8A15002B: upgrade found nothing newer
    $AlreadyInstalled = -1978335135     # 0x8A150061: install found the package installed
    $didSomething = $false
    foreach ($action in $actions) {
        $res = Invoke-Winget -Arguments $action
        if ($res.rc -eq 0) {
            $didSomething = $true
        }
        elseif (-not (($action[0] -eq "upgrade" -and $res.rc -eq $NoApplicableUpdate) -or
                ($action[0] -eq "install" -and $res.rc -eq $AlreadyInstalled))) {
            $module.Result.version_after = Get-InstalledVersion
            Set-CommandResult -Res $res
            $module.FailJson("winget $($action[0]) $id failed with exit code $('0x{0:X8}' -f $res.rc) " +
                "(see https://aka.ms/winget-returncodes).$failHint")
        }
    }
    # rc/stdout/stderr of the last install/upgrade/uninstall, not of the export below.
    Set-CommandResult -Res $res
    $after = Get-InstalledVersion
    $module.Result.version_after = $after
    $module.Result.changed = $didSomething -or ($after -ne $before)
}

$module.ExitJson()
