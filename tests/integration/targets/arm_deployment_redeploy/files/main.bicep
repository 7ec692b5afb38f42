// A Bicep template: arm_deployment_redeploy builds it with `bicep build main.bicep --stdout` when bicep is on PATH.
param environment string = 'sandbox'
param location string = resourceGroup().location

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'asp-fundrbolt-${environment}'
  location: location
  kind: 'linux'
  sku: {
    name: 'P1v3'
    capacity: 1
  }
  properties: {
    reserved: true
  }
}
